package io.moeflow.transport.bench;

/**
 * A memory-traffic bound on a collective's bus bandwidth on one host: the passes over memory that
 * each rank must make per byte of the operation, times the copy bandwidth the ranks measure when
 * they all copy at once.
 *
 * <p>Passes are counted per rank per byte of the operation's size S (nccl-tests' S: the per-rank
 * buffer for all-reduce and broadcast, the whole buffer of all blocks for the others); each read and
 * each write of a byte counts once. Sending a byte is 2 passes (read it from the buffer, write it into
 * the transport's log); receiving is 2 passes for a copy (read the log, write the buffer) and 3 for a
 * reduction (read the log, read the buffer, write the sum). Hence, for p ranks:
 * <ul>
 *   <li>ring all-reduce: (p-1)/p of S sent and reduced, then (p-1)/p sent and copied:
 *       {@code (p-1)/p * (2+3) + (p-1)/p * (2+2) = 9(p-1)/p};</li>
 *   <li>recursive doubling (all-reduce, small sizes): each of log2 p rounds sends S and reduces S:
 *       {@code 5 log2 p}, plus 5 on the ranks that fold in a rank beyond the largest power of two;</li>
 *   <li>ring reduce-scatter {@code 5(p-1)/p}; ring all-gather {@code 4(p-1)/p};</li>
 *   <li>pairwise all-to-all: (p-1)/p of S sent and (p-1)/p copied out, 1/p copied locally:
 *       {@code 4(p-1)/p + 2/p};</li>
 *   <li>broadcast: the busiest rank (the chain's middle: receive and forward S; the tree's root or
 *       inner node: one send per child).</li>
 * </ul>
 * A copy of B bytes is 2B passes, so a per-rank copy rate of C bytes/s is 2C passes/s and the time
 * bound is {@code passes * S / (2C)}; the bus bandwidth bound is {@code busFactor * S / time}. The
 * bound ignores everything but memory traffic (no wire, no per-frame cost, no reduction arithmetic),
 * so a collective can at best reach it.
 */
public final class MemoryBound {
    private MemoryBound() {
    }

    /** Passes over memory per byte of S on the busiest rank of {@code op} with {@code ranks} ranks. */
    public static double passesPerByte(final BenchOp op, final int ranks, final boolean smallMessageAlgorithm) {
        final int p = ranks;
        final double share = (p - 1) / (double) p;
        switch (op) {
            case ALLREDUCE:
                if (smallMessageAlgorithm) {
                    final int pow2 = Integer.highestOneBit(p);
                    final int rounds = Integer.numberOfTrailingZeros(pow2);
                    return 5.0 * rounds + (p > pow2 ? 5 : 0);
                }
                return 9 * share;
            case REDUCESCATTER:
                return 5 * share;
            case ALLGATHER:
                return 4 * share;
            case ALLTOALL:
                return 4 * share + 2.0 / p;
            case BROADCAST:
                return smallMessageAlgorithm ? 2.0 * treeBusiestLoad(p) : p > 2 ? 4 : 2;
            default:
                throw new IllegalStateException(op.name());
        }
    }

    /** Transfers (receives plus sends) of the busiest rank of a binomial broadcast tree. */
    private static int treeBusiestLoad(final int p) {
        int busiest = 0;
        for (int v = 0; v < p; v++) {
            // as ScheduleExecutor plans it: the parent is v minus its lowest set bit, children v + smaller masks
            int mask = 1;
            while (mask < p && (v & mask) == 0) {
                mask <<= 1;
            }
            int load = v != 0 ? 1 : 0;
            for (mask >>= 1; mask > 0; mask >>= 1) {
                if (v + mask < p) {
                    load++;
                }
            }
            busiest = Math.max(busiest, load);
        }
        return busiest;
    }

    /**
     * The bus bandwidth bound in GB/s for a per-rank copy rate of {@code copyGbPerS} (bytes copied per
     * second, each read once and written once).
     */
    public static double busBandwidthBound(final BenchOp op, final int ranks, final boolean smallMessageAlgorithm,
                                           final double copyGbPerS) {
        return op.busFactor(ranks) * 2 * copyGbPerS / passesPerByte(op, ranks, smallMessageAlgorithm);
    }
}
