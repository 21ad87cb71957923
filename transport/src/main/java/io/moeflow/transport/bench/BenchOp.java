package io.moeflow.transport.bench;

import java.util.Locale;

/**
 * Collectives the benchmark can time, with the nccl-tests conventions for the size and the bus
 * bandwidth factor: {@code algbw = S / t}, {@code busbw = algbw * factor}, where S is the per-rank
 * buffer for all-reduce and broadcast and the whole n-rank buffer for the others.
 */
public enum BenchOp {
    ALLREDUCE,
    REDUCESCATTER,
    ALLGATHER,
    ALLTOALL,
    BROADCAST;

    /** The bus bandwidth factor for {@code ranks} ranks. */
    public double busFactor(final int ranks) {
        switch (this) {
            case ALLREDUCE:
                return 2.0 * (ranks - 1) / ranks;
            case BROADCAST:
                return 1.0;
            default:
                return (ranks - 1) / (double) ranks;
        }
    }

    /** Floats in the buffer of a size-{@code bytes} operation (a multiple of the rank count where blocks are per rank). */
    public int floats(final long bytes, final int ranks) {
        final long n = bytes / 4;
        return (int) (this == ALLREDUCE || this == BROADCAST ? n : n / ranks * ranks);
    }

    /** The name used on the command line. */
    public String cliName() {
        return name().toLowerCase(Locale.ROOT);
    }
}
