package io.moeflow.transport.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.List;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Test;

import io.moeflow.transport.Communicator;
import io.moeflow.transport.CommunicatorConfig;
import io.moeflow.transport.RankThreads;
import io.moeflow.transport.ReduceOp;
import io.moeflow.transport.Wire;
import io.moeflow.transport.inprocess.InProcessCluster;

class MemoryBoundTest {
    @Test
    void shouldCountThePassesOfEachAlgorithmPerByte() {
        assertEquals(4.5, MemoryBound.passesPerByte(BenchOp.ALLREDUCE, 2, false), 1e-12, "2-rank ring: 9 x 1/2");
        assertEquals(6.75, MemoryBound.passesPerByte(BenchOp.ALLREDUCE, 4, false), 1e-12, "9 x 3/4");
        assertEquals(5, MemoryBound.passesPerByte(BenchOp.ALLREDUCE, 2, true), 1e-12, "one round: send 2 + reduce 3");
        assertEquals(10, MemoryBound.passesPerByte(BenchOp.ALLREDUCE, 4, true), 1e-12, "two rounds");
        assertEquals(10, MemoryBound.passesPerByte(BenchOp.ALLREDUCE, 3, true), 1e-12, "one round plus the folded-in rank");
        assertEquals(3.75, MemoryBound.passesPerByte(BenchOp.REDUCESCATTER, 4, false), 1e-12);
        assertEquals(3, MemoryBound.passesPerByte(BenchOp.ALLGATHER, 4, false), 1e-12);
        assertEquals(3.5, MemoryBound.passesPerByte(BenchOp.ALLTOALL, 4, false), 1e-12, "3/4 sent and copied out, 1/4 copied locally");
        assertEquals(2, MemoryBound.passesPerByte(BenchOp.BROADCAST, 2, false), 1e-12, "chain of two: send or receive");
        assertEquals(4, MemoryBound.passesPerByte(BenchOp.BROADCAST, 4, false), 1e-12, "chain: receive and forward");
        assertEquals(6, MemoryBound.passesPerByte(BenchOp.BROADCAST, 8, true), 1e-12, "tree of 8: the root sends 3 times");
        assertEquals(6, MemoryBound.passesPerByte(BenchOp.BROADCAST, 5, true), 1e-12, "tree of 5: the root sends 3 times");
        assertEquals(4, MemoryBound.passesPerByte(BenchOp.BROADCAST, 3, true), 1e-12, "tree of 3: the root sends twice");
    }

    @Test
    void shouldTurnCopyBandwidthIntoBusBandwidth() {
        // 2-rank ring: busFactor 1, 9 GB/s copied = 18 GB/s of passes, 4.5 passes per byte -> 4 GB/s
        assertEquals(4.0, MemoryBound.busBandwidthBound(BenchOp.ALLREDUCE, 2, false, 9.0), 1e-12);
        // 4 ranks: busFactor 1.5, 6.75 passes per byte
        assertEquals(1.5 * 2 * 9.0 / 6.75, MemoryBound.busBandwidthBound(BenchOp.ALLREDUCE, 4, false, 9.0), 1e-12);
    }

    /** The send passes of the count (2 per byte sent) match the payload bytes the engine really sends. */
    @Test
    void shouldAssumeTheBytesTheEngineSends() {
        for (final int p : new int[] {2, 3, 4}) {
            final int n = 3 * 4 * 5 * 1000; // divisible by every p here
            final List<Communicator> comms = InProcessCluster.create(p).communicators(
                CommunicatorConfig.DEFAULT.withOpTimeoutNs(TimeUnit.SECONDS.toNanos(20)));
            final long[][] payload = new long[p][2];
            RankThreads.run(p, 60_000, rank -> {
                final Communicator c = comms.get(rank);
                final float[] buf = new float[n];
                final float[] recv = new float[n];
                final int[] counts = new int[p];
                java.util.Arrays.fill(counts, n / p);
                for (int op = 0; op < 2; op++) {
                    final long bytes = c.counters().bytesSent();
                    final long frames = c.counters().framesSent();
                    if (op == 0) {
                        c.allReduce(buf, 0, n, ReduceOp.SUM);
                    } else {
                        c.allToAll(buf, 0, counts, recv, 0, counts, null);
                    }
                    payload[rank][op] = c.counters().bytesSent() - bytes - Wire.HEADER_LENGTH * (c.counters().framesSent() - frames);
                }
            });
            final double s = 4.0 * n;
            for (int r = 0; r < p; r++) {
                // ring all-reduce: 2(p-1)/p of S sent (the 4 of 9(p-1)/p); all-to-all: (p-1)/p (the 2 of 4(p-1)/p)
                assertEquals(2.0 * (p - 1) / p, payload[r][0] / s, 1e-9, "p=" + p + " rank " + r + ": all-reduce");
                assertEquals((p - 1.0) / p, payload[r][1] / s, 1e-9, "p=" + p + " rank " + r + ": all-to-all");
            }
            comms.forEach(Communicator::close);
        }
    }
}
