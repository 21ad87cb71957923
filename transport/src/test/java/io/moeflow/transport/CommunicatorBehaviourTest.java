package io.moeflow.transport;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.management.ManagementFactory;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;

import org.agrona.concurrent.UnsafeBuffer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import io.moeflow.transport.inprocess.InProcessCluster;

/** Sub-groups, async operations, failures, bad input and allocation, on the in-process back-end. */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class CommunicatorBehaviourTest {
    static final CommunicatorConfig CONFIG = CommunicatorConfig.DEFAULT.withOpTimeoutNs(TimeUnit.SECONDS.toNanos(10));

    @Test
    void shouldRunCollectivesInExpertAndDataParallelSubGroups() {
        final int p = 4;
        final List<Communicator> world = InProcessCluster.create(p, 1 << 14, 512).communicators(CONFIG);
        RankThreads.run(p, 30_000, rank -> {
            final Communicator c = world.get(rank);
            final Communicator ep = c.split(rank / 2, rank); // {0,1} {2,3}
            final Communicator dp = c.split(rank % 2, -rank); // {2,0} {3,1}: key orders members
            assertEquals(2, ep.size());
            assertEquals(rank % 2, ep.rank());
            assertEquals(rank < 2 ? 1 : 0, dp.rank(), "negative keys put the higher rank first");
            assertEquals(rank, ep.globalRank(ep.rank()));
            final float[] e = {rank};
            final float[] d = {rank};
            for (int i = 0; i < 10; i++) {
                e[0] = rank;
                d[0] = rank;
                ep.allReduce(e, 0, 1, ReduceOp.SUM);
                dp.allReduce(d, 0, 1, ReduceOp.SUM);
                assertEquals(rank < 2 ? 1f : 5f, e[0]);
                assertEquals(rank % 2 == 0 ? 2f : 4f, d[0]);
            }
            final float[] big = new float[10_000];
            Arrays.fill(big, rank);
            dp.broadcast(big, 0, big.length, 0); // member 0 of {2,0} is rank 2, of {3,1} rank 3
            assertEquals(rank % 2 == 0 ? 2f : 3f, big[9_999]);
            c.barrier();
        });
    }

    @Test
    void shouldOverlapAsyncAllReducesAndKeepIssueOrder() {
        final int p = 3;
        final List<Communicator> comms = InProcessCluster.create(p, 1 << 14, 512).communicators(CONFIG);
        final int buckets = 6;
        final int n = 30_000;
        RankThreads.run(p, 30_000, rank -> {
            final Communicator c = comms.get(rank);
            final float[] grads = RankThreads.values(21, rank, buckets * n);
            final List<CollectiveHandle> handles = new ArrayList<>();
            for (int b = buckets - 1; b >= 0; b--) { // backward order, like gradient buckets
                handles.add(c.allReduceAsync(grads, b * n, n, ReduceOp.AVERAGE, null));
                if (b == 3) {
                    final float[] token = {rank};
                    c.allReduce(token, 0, 1, ReduceOp.SUM); // a blocking call waits for the earlier async ones
                    assertEquals(3f, token[0]);
                    assertTrue(handles.get(0).isDone() && handles.get(1).isDone());
                }
            }
            for (final CollectiveHandle h : handles) {
                h.await(TimeUnit.SECONDS.toNanos(20));
                assertTrue(h.isDone());
            }
            final float[][] inputs = new float[p][];
            for (int r = 0; r < p; r++) {
                inputs[r] = RankThreads.values(21, r, buckets * n);
            }
            for (int b = 0; b < buckets; b++) {
                final float[][] bucket = new float[p][];
                for (int r = 0; r < p; r++) {
                    bucket[r] = Arrays.copyOfRange(inputs[r], b * n, (b + 1) * n);
                }
                assertArrayEquals(ReferenceCollectives.ringAllReduce(bucket, ReduceOp.AVERAGE),
                    Arrays.copyOfRange(grads, b * n, (b + 1) * n), "bucket " + b);
            }
        });
    }

    @Test
    void shouldNameTheSilentRankAndOperationOnTimeout() {
        final int p = 3;
        final List<Communicator> comms = InProcessCluster.create(p).communicators(
            CONFIG.withOpTimeoutNs(TimeUnit.MILLISECONDS.toNanos(300)));
        final PeerFailureException[] failures = new PeerFailureException[p];
        RankThreads.run(p, 20_000, rank -> {
            if (rank == 2) {
                return; // silent: never calls
            }
            final float[] buf = {1f, 2f};
            failures[rank] = assertThrows(PeerFailureException.class, () -> comms.get(rank).allReduce(buf, 0, 2, ReduceOp.SUM));
            final TransportException later = assertThrows(TransportException.class, () -> comms.get(rank).barrier());
            assertSame(failures[rank], later.getCause(), "later calls fail fast with the first failure as cause");
        });
        assertEquals(PeerFailureException.Reason.TIMEOUT, failures[0].reason());
        assertEquals(2, failures[0].peer(), "rank 0 folds in rank 2 first, so it waits for rank 2");
        assertEquals(0, failures[0].rank());
        assertTrue(failures[0].getMessage().contains("rank 0: allReduce #0 (group 0, 2 floats) failed"), failures[0].getMessage());
        assertTrue(failures[0].getMessage().contains("waiting for data from rank 2"), failures[0].getMessage());
        assertEquals(2, failures[1].peer(), "rank 1 waits for the healthy rank 0 but must name rank 2: " + failures[1].getMessage());
        assertEquals(PeerFailureException.Reason.TIMEOUT, failures[1].reason(), failures[1].getMessage());
    }

    @Test
    void shouldNameTheSilentRankOnEveryWaitingRankWhenTimeoutsRace() {
        // rank 1 waits for rank 0, which waits for the silent rank 2: both time out at about the
        // same moment, and rank 1 must still name rank 2 (not the healthy rank 0) in every run
        final int p = 3;
        final int runs = 30;
        for (int run = 0; run < runs; run++) {
            final List<Communicator> comms = InProcessCluster.create(p).communicators(
                CONFIG.withOpTimeoutNs(TimeUnit.MILLISECONDS.toNanos(200)));
            final PeerFailureException[] failures = new PeerFailureException[p];
            RankThreads.run(p, 20_000, rank -> {
                if (rank == 2) {
                    return; // silent: never calls
                }
                final float[] buf = {1f, 2f};
                failures[rank] = assertThrows(PeerFailureException.class, () -> comms.get(rank).allReduce(buf, 0, 2, ReduceOp.SUM));
            });
            for (int rank = 0; rank < 2; rank++) {
                assertEquals(2, failures[rank].peer(), "run " + run + ", rank " + rank + " named a healthy rank: "
                    + failures[rank].getMessage());
                assertEquals(PeerFailureException.Reason.TIMEOUT, failures[rank].reason(), failures[rank].getMessage());
            }
        }
    }

    @Test
    void shouldFailFastWhenAPeerDies() {
        final int p = 2;
        final InProcessCluster cluster = InProcessCluster.create(p);
        final List<Communicator> comms = cluster.communicators(CONFIG.withOpTimeoutNs(TimeUnit.SECONDS.toNanos(30)));
        final PeerFailureException[] failure = new PeerFailureException[1];
        RankThreads.run(p, 20_000, rank -> {
            if (rank == 1) {
                Thread.sleep(100);
                cluster.kill(1);
                return;
            }
            final float[] buf = new float[100_000];
            failure[0] = assertThrows(PeerFailureException.class, () -> comms.get(0).allReduce(buf, 0, buf.length, ReduceOp.SUM));
        });
        assertEquals(PeerFailureException.Reason.DISCONNECTED, failure[0].reason());
        assertEquals(1, failure[0].peer());
        assertTrue(failure[0].getMessage().contains("rank 1 died"), failure[0].getMessage());
    }

    @Test
    void shouldRejectMismatchedCountsWithAClearMessage() {
        final List<Communicator> comms = InProcessCluster.create(2).communicators(CONFIG);
        final String[] messages = new String[2];
        RankThreads.run(2, 20_000, rank -> {
            final float[] buf = new float[200];
            final TransportException e = assertThrows(TransportException.class,
                () -> comms.get(rank).allReduce(buf, 0, rank == 0 ? 100 : 200, ReduceOp.SUM));
            messages[rank] = e.getMessage();
        });
        assertTrue(messages[0].contains("rank 0: allReduce #0 (group 0, 100 floats) failed: cannot accept data from rank 1: "
            + "the peer sends 200 values where this rank expects 100: do all ranks pass the same count"), messages[0]);
        assertTrue(messages[1].contains("rank 1: allReduce #0 (group 0, 200 floats) failed: cannot accept data from rank 0: "
            + "the peer sends 100 values where this rank expects 200: do all ranks pass the same count"), messages[1]);
    }

    @Test
    void shouldNameAReduceOpMismatchInsteadOfMixingSumAndAverage() {
        final List<Communicator> comms = InProcessCluster.create(2).communicators(CONFIG);
        final String[] messages = new String[2];
        RankThreads.run(2, 20_000, rank -> {
            final float[] buf = new float[1000];
            messages[rank] = assertThrows(TransportException.class,
                () -> comms.get(rank).allReduce(buf, 0, buf.length, rank == 0 ? ReduceOp.SUM : ReduceOp.AVERAGE)).getMessage();
        });
        // each rank names the mismatch in its own words: it reads the peer's data before the peer's ABORT
        assertTrue(messages[0].contains("the peer reduces with AVERAGE where this rank uses SUM"), messages[0]);
        assertTrue(messages[1].contains("the peer reduces with SUM where this rank uses AVERAGE"), messages[1]);
    }

    @Test
    void shouldNameAnOperationMismatch() {
        final List<Communicator> comms = InProcessCluster.create(2).communicators(CONFIG);
        final String[] message = new String[1];
        RankThreads.run(2, 20_000, rank -> {
            final float[] buf = new float[1000];
            if (rank == 0) {
                message[0] = assertThrows(TransportException.class, () -> comms.get(0).allReduce(buf, 0, buf.length, ReduceOp.SUM))
                    .getMessage();
            } else {
                comms.get(1).broadcast(buf, 0, buf.length, 1); // the root only sends, so it finishes
            }
        });
        assertTrue(message[0].contains("the peer runs broadcast #0 where this rank runs allReduce #0"), message[0]);
    }

    void shouldRunOperationsOfDifferentGroupsInAnyOrderOnEachRank() {
        final List<Communicator> comms = InProcessCluster.create(2).communicators(CONFIG);
        final float[][] results = new float[2][];
        RankThreads.run(2, 20_000, rank -> {
            final Communicator a = comms.get(rank).split(0, rank);
            final Communicator b = comms.get(rank).split(0, rank);
            final float[] x = {rank + 1f};
            final float[] y = {10f * (rank + 1)};
            // rank 0 issues a then b, rank 1 b then a: groups run on their own lanes, so neither waits for the other
            final CollectiveHandle first = rank == 0 ? a.allReduceAsync(x, 0, 1, ReduceOp.SUM, null)
                : b.allReduceAsync(y, 0, 1, ReduceOp.SUM, null);
            final CollectiveHandle second = rank == 0 ? b.allReduceAsync(y, 0, 1, ReduceOp.SUM, null)
                : a.allReduceAsync(x, 0, 1, ReduceOp.SUM, null);
            first.await(TimeUnit.SECONDS.toNanos(10));
            second.await(TimeUnit.SECONDS.toNanos(10));
            results[rank] = new float[] {x[0], y[0]};
        });
        assertArrayEquals(new float[] {3f, 30f}, results[0]);
        assertArrayEquals(new float[] {3f, 30f}, results[1]);
    }

    @Test
    void shouldKeepAPointToPointMessageThatArrivesBeforeACollective() {
        final List<Communicator> comms = InProcessCluster.create(2).communicators(
            CONFIG.withOpTimeoutNs(TimeUnit.MILLISECONDS.toNanos(1500)));
        final String[] message = new String[1];
        RankThreads.run(2, 20_000, rank -> {
            final float[] buf = {1f};
            comms.get(rank).barrier();
            comms.get(rank).barrier(); // the collectives' sequence is now ahead of the point-to-point one
            if (rank == 1) {
                comms.get(1).send(0, new float[] {42f}, 0, 1); // rank 0 calls these in the other order
                comms.get(1).allReduce(buf, 0, 1, ReduceOp.SUM);
            } else {
                message[0] = assertThrows(TransportException.class, () -> comms.get(0).allReduce(buf, 0, 1, ReduceOp.SUM))
                    .getMessage();
            }
        });
        assertTrue(message[0].contains("rank 1 sent a frame of sendRecv #0 step 0 of group 0 while this rank still expects 1 values"),
            message[0]);
        assertEquals(0, comms.get(0).counters().unexpectedFramesDropped(), "the message was left in the stream, not dropped");
    }

    @Test
    void shouldDropAndCountMalformedAndStaleFramesAndStillFinish() {
        final InProcessCluster cluster = InProcessCluster.create(2);
        final List<Communicator> comms = cluster.communicators(CONFIG);
        final UnsafeBuffer junk = new UnsafeBuffer(new byte[64]);
        junk.putInt(0, 0xDEADBEEF);
        assertTrue(cluster.inject(1, 0, junk, 0, 5), "too short");
        assertTrue(cluster.inject(1, 0, junk, 0, 64), "bad magic");
        final UnsafeBuffer frame = new UnsafeBuffer(new byte[Wire.HEADER_LENGTH + 4]);
        Wire.putPreamble(frame, 0, (byte) 9, (byte) 1);
        assertTrue(cluster.inject(1, 0, frame, 0, frame.capacity()), "unknown kind");
        Wire.putPreamble(frame, 0, Wire.KIND_DATA, (byte) 1);
        frame.putInt(Wire.OFFSET_SEQUENCE, -5);
        frame.putInt(Wire.OFFSET_BLOCK_ELEMENTS, 1);
        frame.putInt(Wire.OFFSET_FRAME_ELEMENTS, 1);
        assertTrue(cluster.inject(1, 0, frame, 0, frame.capacity()), "stale sequence");
        frame.putInt(Wire.OFFSET_SEQUENCE, 0);
        frame.putInt(Wire.OFFSET_STEP, 1);
        frame.putByte(Wire.OFFSET_REDUCE_OP, (byte) Wire.reduceOpCode(ReduceOp.SUM));
        frame.putInt(Wire.OFFSET_FRAME_ELEMENTS, 7);
        assertTrue(cluster.inject(1, 0, frame, 0, frame.capacity()), "payload shorter than its element count");
        RankThreads.run(2, 20_000, rank -> {
            final float[] buf = {rank + 1f};
            comms.get(rank).allReduce(buf, 0, 1, ReduceOp.SUM);
            assertEquals(3f, buf[0]);
        });
        final TransportCounters counters = comms.get(0).counters();
        assertEquals(4, counters.malformedFramesDropped(), counters.toString());
        assertEquals(1, counters.unexpectedFramesDropped(), counters.toString());
    }

    @Test
    void shouldReportAwaitTimeoutAndThenThePeerFailure() {
        final List<Communicator> comms = InProcessCluster.create(2).communicators(
            CONFIG.withOpTimeoutNs(TimeUnit.MILLISECONDS.toNanos(400)));
        final float[] buf = new float[10];
        final CollectiveHandle h = comms.get(0).allReduceAsync(buf, 0, 10, ReduceOp.SUM, null);
        assertThrows(AwaitTimeoutException.class, () -> h.await(TimeUnit.MILLISECONDS.toNanos(20)));
        final PeerFailureException e = assertThrows(PeerFailureException.class, () -> h.await(TimeUnit.SECONDS.toNanos(10)));
        assertEquals(1, e.peer());
        assertTrue(h.isDone());
    }

    @Test
    void shouldRejectBadArgumentsNamingTheValue() {
        final Communicator c = InProcessCluster.create(2).communicators(CONFIG).get(0);
        final float[] buf = new float[10];
        assertEquals("allReduce: off=5 count=6 does not fit buf.length=10",
            assertThrows(IllegalArgumentException.class, () -> c.allReduce(buf, 5, 6, ReduceOp.SUM)).getMessage());
        assertEquals("root=2: must be in [0, 2)",
            assertThrows(IllegalArgumentException.class, () -> c.broadcast(buf, 0, 1, 2)).getMessage());
        assertEquals("send: peer=0: must be another rank in [0, 2), not this rank 0",
            assertThrows(IllegalArgumentException.class, () -> c.send(0, buf, 0, 1)).getMessage());
        assertEquals("allToAll: sendCounts.length=1: must equal the group size 2",
            assertThrows(IllegalArgumentException.class, () -> c.allToAll(buf, 0, new int[1], buf, 0, new int[2], null)).getMessage());
        assertTrue(assertThrows(IllegalArgumentException.class, () -> c.allReduce(buf, 0, 10, ReduceOp.SUM,
            Fp8Compression.withErrorFeedback(io.moeflow.transport.fp8.Fp8Format.E4M3, 9))).getMessage().contains("residual length=9"));
        assertThrows(IllegalArgumentException.class, () -> CONFIG.withOpTimeoutNs(0));
    }

    @Test
    void shouldNotAllocateInBlockingCollectives() {
        final int p = 2;
        final List<Communicator> comms = InProcessCluster.create(p).communicators(CONFIG);
        final com.sun.management.ThreadMXBean threads = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        // fewest bytes allocated by a rank in one round after the first (the JIT may allocate now and then
        // while it recompiles; a per-operation allocation would show in every round)
        final long[] allocated = {Long.MAX_VALUE, Long.MAX_VALUE};
        RankThreads.run(p, 60_000, rank -> {
            final Communicator c = comms.get(rank);
            final float[] small = new float[8];
            final float[] large = new float[200_000];
            final float[] recv = new float[200_000];
            final int[] counts = {100_000, 100_000};
            final Fp8Compression fp8 = Fp8Compression.withErrorFeedback(io.moeflow.transport.fp8.Fp8Format.E4M3, large.length);
            final long self = Thread.currentThread().getId();
            final long probe = threads.getThreadAllocatedBytes(self);
            final long probeCost = threads.getThreadAllocatedBytes(self) - probe; // what measuring itself allocates
            for (int round = 0; round < 5; round++) {
                final long before = threads.getThreadAllocatedBytes(self);
                for (int i = 0; i < 300; i++) {
                    c.allReduce(small, 0, small.length, ReduceOp.SUM);
                    if (i % 10 == 0) {
                        c.allReduce(large, 0, large.length, ReduceOp.AVERAGE);
                        c.allReduce(large, 0, large.length, ReduceOp.SUM, fp8);
                        c.urgent().allToAll(large, 0, counts, recv, 0, counts, null); // the urgent lane too
                        c.broadcast(large, 0, large.length, 1);
                        c.barrier();
                    }
                }
                final long bytes = threads.getThreadAllocatedBytes(self) - before - probeCost;
                if (round > 0) {
                    allocated[rank] = Math.min(allocated[rank], bytes);
                }
            }
        });
        assertEquals(0, allocated[0], "fewest bytes allocated by rank 0 in a round of 330 collectives");
        assertEquals(0, allocated[1], "fewest bytes allocated by rank 1 in a round of 330 collectives");
        assertFalse(Arrays.stream(allocated).anyMatch(a -> a != 0));
    }
}
