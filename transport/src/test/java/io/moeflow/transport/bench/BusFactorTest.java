package io.moeflow.transport.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import io.moeflow.transport.Communicator;
import io.moeflow.transport.CommunicatorConfig;
import io.moeflow.transport.RankThreads;
import io.moeflow.transport.ReduceOp;
import io.moeflow.transport.TransportCounters;
import io.moeflow.transport.Wire;
import io.moeflow.transport.inprocess.InProcessCluster;

/**
 * The bus bandwidth factor of the benchmark is the payload each rank puts on its links per byte of
 * the operation's size (nccl-tests): checked by hand for 2..8 ranks, and against the bytes the ring
 * algorithms really send, measured with the transport counters, for 3..8 ranks.
 */
class BusFactorTest {
    static final CommunicatorConfig CONFIG = CommunicatorConfig.DEFAULT.withOpTimeoutNs(TimeUnit.SECONDS.toNanos(10))
        .withSmallMessageLimits(0, 0); // always the ring and the chain

    @ParameterizedTest(name = "p={0}")
    @CsvSource({"2,1.0,0.5", "3,1.3333333333333333,0.6666666666666666", "4,1.5,0.75", "6,1.6666666666666667,0.8333333333333334",
        "8,1.75,0.875"})
    void shouldUseTheNcclFactors(final int p, final double allReduce, final double others) {
        assertEquals(allReduce, BenchOp.ALLREDUCE.busFactor(p), 1e-12);
        for (final BenchOp op : new BenchOp[] {BenchOp.REDUCESCATTER, BenchOp.ALLGATHER, BenchOp.ALLTOALL}) {
            assertEquals(others, op.busFactor(p), 1e-12, op.name());
        }
        assertEquals(1.0, BenchOp.BROADCAST.busFactor(p), 1e-12);
    }

    @ParameterizedTest(name = "p={0} {1}")
    @CsvSource({"3,ALLREDUCE", "5,ALLREDUCE", "8,ALLREDUCE", "3,REDUCESCATTER", "6,REDUCESCATTER", "4,ALLGATHER",
        "8,ALLGATHER", "3,ALLTOALL", "7,ALLTOALL"})
    void shouldSendTheBusFactorTimesTheSizeFromEveryRank(final int p, final BenchOp op) {
        final int floats = op.floats(4L * 840 * 64, p); // divisible by 2..8: equal blocks
        final List<Communicator> comms = InProcessCluster.create(p, 1 << 16, 1024).communicators(CONFIG);
        final long[] payloadBytes = new long[p];
        RankThreads.run(p, 30_000, rank -> {
            final Communicator c = comms.get(rank);
            final float[] buf = RankThreads.values(17, rank, floats);
            final TransportCounters counters = c.counters();
            final long bytesBefore = counters.bytesSent();
            final long framesBefore = counters.framesSent();
            switch (op) {
                case ALLREDUCE:
                    c.allReduce(buf, 0, floats, ReduceOp.SUM);
                    break;
                case REDUCESCATTER:
                    c.reduceScatter(buf, 0, floats / p, ReduceOp.SUM, null);
                    break;
                case ALLGATHER:
                    c.allGather(buf, 0, floats / p, null);
                    break;
                default:
                    final int[] counts = new int[p];
                    Arrays.fill(counts, floats / p);
                    c.allToAll(buf, 0, counts, new float[floats], 0, counts, null);
            }
            payloadBytes[rank] = counters.bytesSent() - bytesBefore - Wire.HEADER_LENGTH * (counters.framesSent() - framesBefore);
        });
        for (int r = 0; r < p; r++) {
            assertEquals(op.busFactor(p) * 4L * floats, payloadBytes[r], 1e-6, "payload bytes rank " + r + " sent");
        }
    }
}
