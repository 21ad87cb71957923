package io.moeflow.transport.aeron;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Paths;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import io.moeflow.transport.Communicator;
import io.moeflow.transport.CommunicatorConfig;
import io.moeflow.transport.ConcurrentOperations;
import io.moeflow.transport.Communicators;
import io.moeflow.transport.Fp8Compression;
import io.moeflow.transport.RankThreads;
import io.moeflow.transport.ReduceOp;
import io.moeflow.transport.ReferenceCollectives;
import io.moeflow.transport.fp8.Fp8Format;
import io.moeflow.transport.inprocess.InProcessCluster;

/**
 * The collectives over real Aeron IPC and UDP (ranks as threads with their own Aeron clients), and
 * bit-for-bit agreement with the in-process back-end.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class AeronCollectivesTest {
    static final CommunicatorConfig CONFIG = CommunicatorConfig.DEFAULT.withOpTimeoutNs(TimeUnit.SECONDS.toNanos(20));

    /** Runs the same script of collectives on every rank and returns each rank's outputs, concatenated. */
    static float[] script(final Communicator c) {
        final int p = c.size();
        final int rank = c.rank();
        final float[] small = RankThreads.values(1, rank, 5);
        c.allReduce(small, 0, small.length, ReduceOp.SUM);
        final float[] large = RankThreads.values(2, rank, 300_001);
        c.allReduce(large, 0, large.length, ReduceOp.AVERAGE);
        final float[] fp8 = RankThreads.values(3, rank, 10_000);
        c.allReduce(fp8, 0, fp8.length, ReduceOp.SUM, Fp8Compression.of(Fp8Format.E4M3));
        final float[] blocks = RankThreads.values(4, rank, p * 1000);
        c.reduceScatter(blocks, 0, 1000, ReduceOp.SUM, null);
        c.allGather(blocks, 0, 1000, null);
        final float[] bcast = rank == 1 ? RankThreads.values(5, 1, 70_000) : new float[70_000];
        c.broadcast(bcast, 0, bcast.length, 1);
        final int[] counts = new int[p];
        for (int j = 0; j < p; j++) {
            counts[j] = 1000 * (j + 1);
        }
        final int[] recvCounts = new int[p];
        Arrays.fill(recvCounts, 1000 * (rank + 1));
        final float[] send = RankThreads.values(6, rank, Arrays.stream(counts).sum());
        final float[] recv = new float[Arrays.stream(recvCounts).sum()];
        c.allToAll(send, 0, counts, recv, 0, recvCounts, null);
        // an async all-reduce in a sub-group (ranks of equal parity), overlapped with a blocking world barrier
        final Communicator parity = c.split(rank % 2, rank);
        final float[] bucket = RankThreads.values(7, rank, 50_000);
        final io.moeflow.transport.CollectiveHandle handle = parity.allReduceAsync(bucket, 0, bucket.length, ReduceOp.AVERAGE, null);
        c.barrier();
        handle.await(java.util.concurrent.TimeUnit.SECONDS.toNanos(20));
        final float[] all = new float[small.length + large.length + fp8.length + blocks.length + bcast.length + recv.length
            + bucket.length];
        int at = 0;
        for (final float[] part : new float[][] {small, large, fp8, blocks, bcast, recv, bucket}) {
            System.arraycopy(part, 0, all, at, part.length);
            at += part.length;
        }
        return all;
    }

    static float[][] runInProcess(final int p) {
        final List<Communicator> comms = InProcessCluster.create(p).communicators(CONFIG);
        final float[][] out = new float[p][];
        RankThreads.run(p, 60_000, rank -> out[rank] = script(comms.get(rank)));
        return out;
    }

    @Test
    void shouldRunEveryCollectiveOverIpcWithTheInProcessBits() throws Exception {
        final int p = 3;
        try (AeronTestJob job = new AeronTestJob(); JobMediaDriver driver = JobMediaDriver.launch(job.ipcDirectory(),
            io.moeflow.transport.IdleMode.BACKOFF)) {
            final float[][] out = new float[p][];
            final long[] bytes = new long[p];
            RankThreads.run(p, 90_000, rank -> {
                try (Communicator c = Communicators.create(AeronTransport.connect(job.ipc(rank, p)), CONFIG)) {
                    out[rank] = script(c);
                    bytes[rank] = c.counters().bytesReceived();
                    assertEquals(0, c.counters().malformedFramesDropped() + c.counters().unauthenticatedFramesDropped()
                        + c.counters().handshakesRejected(), c.counters().toString());
                }
            });
            final float[][] reference = runInProcess(p);
            for (int r = 0; r < p; r++) {
                assertArrayEquals(reference[r], out[r], "rank " + r + " over IPC differs from in-process");
                assertTrue(bytes[r] > 1_000_000, "rank " + r + " received " + bytes[r] + " bytes");
            }
            // and the in-process bits are the reference's: the small (recursive doubling) and large (ring)
            // all-reduces at the head of every rank's output
            final float[][] small = new float[p][];
            final float[][] large = new float[p][];
            for (int r = 0; r < p; r++) {
                small[r] = RankThreads.values(1, r, 5);
                large[r] = RankThreads.values(2, r, 300_001);
            }
            final float[] expectedSmall = ReferenceCollectives.recursiveDoublingAllReduce(small, ReduceOp.SUM);
            final float[] expectedLarge = ReferenceCollectives.ringAllReduce(large, ReduceOp.AVERAGE);
            for (int r = 0; r < p; r++) {
                assertArrayEquals(expectedSmall, Arrays.copyOfRange(out[r], 0, 5), "rank " + r + " small all-reduce");
                assertArrayEquals(expectedLarge, Arrays.copyOfRange(out[r], 5, 5 + 300_001), "rank " + r + " large all-reduce");
            }
        }
    }

    @Test
    void shouldRunEveryCollectiveOverUdpLoopback() throws Exception {
        final int p = 2;
        try (AeronTestJob job = new AeronTestJob()) {
            final List<String> endpoints = io.moeflow.transport.bench.LoopbackPorts.udpEndpoints(p);
            final float[][] out = new float[p][];
            RankThreads.run(p, 90_000, rank -> {
                try (Communicator c = Communicators.create(AeronTransport.connect(job.udp(rank, endpoints)), CONFIG)) {
                    out[rank] = script(c);
                }
            });
            final float[][] reference = runInProcess(p);
            for (int r = 0; r < p; r++) {
                assertArrayEquals(reference[r], out[r], "rank " + r + " over UDP differs from in-process");
            }
            for (int r = 0; r < p; r++) {
                assertFalse(Files.exists(Paths.get(job.root.toString(), "aeron-udp-" + r)), "driver directory deleted");
            }
        }
    }

    @Test
    void shouldFinishAnUrgentAllToAllBeforeQueuedAllReducesOverIpcWithTheSequentialBits() throws Exception {
        final int p = 3;
        try (AeronTestJob job = new AeronTestJob(); JobMediaDriver driver = JobMediaDriver.launch(job.ipcDirectory(),
            io.moeflow.transport.IdleMode.BACKOFF)) {
            final float[][][] out = new float[p][][];
            RankThreads.run(p, 100_000, rank -> {
                try (Communicator c = Communicators.create(AeronTransport.connect(job.ipc(rank, p)), CONFIG)) {
                    out[rank] = ConcurrentOperations.run(c);
                }
            });
            ConcurrentOperations.assertSameBits(ConcurrentOperations.runSequentially(p, CONFIG), out);
        }
    }

    @Test
    void shouldMatchTheRingReferenceOverIpcForTwoRanks() throws Exception {
        final int p = 2;
        final int n = 1 << 20;
        try (AeronTestJob job = new AeronTestJob(); JobMediaDriver driver = JobMediaDriver.launch(job.ipcDirectory(),
            io.moeflow.transport.IdleMode.BACKOFF)) {
            final float[][] inputs = {RankThreads.values(9, 0, n), RankThreads.values(9, 1, n)};
            final float[] expected = ReferenceCollectives.ringAllReduce(inputs, ReduceOp.SUM);
            RankThreads.run(p, 90_000, rank -> {
                try (Communicator c = Communicators.create(AeronTransport.connect(job.ipc(rank, p)), CONFIG)) {
                    for (int round = 0; round < 3; round++) {
                        final float[] buf = inputs[rank].clone();
                        c.allReduce(buf, 0, n, ReduceOp.SUM);
                        assertArrayEquals(expected, buf, "round " + round);
                    }
                }
            });
        }
    }

    @Test
    void shouldNotAllocatePerOperationOverIpc() throws Exception {
        final int p = 2;
        final com.sun.management.ThreadMXBean threads =
            (com.sun.management.ThreadMXBean) java.lang.management.ManagementFactory.getThreadMXBean();
        final long[] fewest = {Long.MAX_VALUE, Long.MAX_VALUE};
        try (AeronTestJob job = new AeronTestJob(); JobMediaDriver driver = JobMediaDriver.launch(job.ipcDirectory(),
            io.moeflow.transport.IdleMode.BACKOFF)) {
            RankThreads.run(p, 90_000, rank -> {
                try (Communicator c = Communicators.create(AeronTransport.connect(job.ipc(rank, p)), CONFIG)) {
                    final float[] small = new float[4];
                    final float[] large = new float[300_000];
                    final long self = Thread.currentThread().getId();
                    for (int round = 0; round < 5; round++) {
                        final long before = threads.getThreadAllocatedBytes(self);
                        for (int i = 0; i < 200; i++) {
                            c.allReduce(small, 0, small.length, ReduceOp.SUM);
                            if (i % 20 == 0) {
                                c.allReduce(large, 0, large.length, ReduceOp.SUM);
                            }
                        }
                        final long bytes = threads.getThreadAllocatedBytes(self) - before;
                        if (round > 0) {
                            fewest[rank] = Math.min(fewest[rank], bytes); // the JIT may allocate now and then
                        }
                    }
                }
            });
        }
        assertEquals(0, fewest[0], "fewest bytes rank 0 allocated in a round of 210 all-reduces");
        assertEquals(0, fewest[1], "fewest bytes rank 1 allocated in a round of 210 all-reduces");
    }
}
