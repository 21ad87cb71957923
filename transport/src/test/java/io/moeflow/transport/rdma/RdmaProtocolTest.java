package io.moeflow.transport.rdma;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import io.moeflow.transport.Communicator;
import io.moeflow.transport.Communicators;
import io.moeflow.transport.FrameAction;
import io.moeflow.transport.JobToken;
import io.moeflow.transport.PeerFailureException;
import io.moeflow.transport.RankThreads;
import io.moeflow.transport.ReduceOp;
import io.moeflow.transport.Transport;
import io.moeflow.transport.TransportException;

/** The RDMA protocol on in-memory verbs: credits, chunked registration, ordering, handshake, failures. */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class RdmaProtocolTest {
    private static final int LANE = 2;

    private static RdmaTransport[] job(final int size, final long seed) {
        final JobToken token = JobToken.generate();
        return RdmaTestJob.open(new InMemoryFabric(size, seed), rank -> RdmaTestJob.smallConfig(token, rank, size));
    }

    /** Sends one frame whose bytes are {@code tag, tag+1, ...}; returns the claim result. */
    private static int send(final Transport t, final int peer, final int lane, final int length, final int tag) {
        final int at = t.tryClaim(peer, lane, length);
        if (at >= 0) {
            for (int i = 0; i < length; i++) {
                t.claimBuffer(peer, lane).putByte(at + i, (byte) (tag + i));
            }
            t.commit(peer, lane);
        }
        return at;
    }

    /** Polls up to {@code max} frames (bounded wait for the first), checking each frame's bytes against its tag. */
    private static List<Integer> receive(final Transport t, final int peer, final int lane, final int max) {
        final List<Integer> tags = new ArrayList<>();
        final long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
        while (tags.size() < max && System.nanoTime() - deadline < 0) {
            t.poll(peer, lane, (buffer, offset, length) -> {
                final int tag = buffer.getByte(offset);
                for (int i = 0; i < length; i++) {
                    assertEquals((byte) (tag + i), buffer.getByte(offset + i), "byte " + i + " of frame " + tag);
                }
                tags.add(tag + 1000 * length);
                return FrameAction.CONTINUE;
            }, max - tags.size());
        }
        return tags;
    }

    @Test
    void shouldNeverOverrunASlowReceiverAndNotBlockOtherLanes() {
        final RdmaTransport[] t = job(2, 1);
        int accepted = 0;
        for (int i = 0; i < 20; i++) {
            if (send(t[0], 1, LANE, 1000, i) >= 0) {
                accepted++;
            }
        }
        assertEquals(4, accepted, "a sender gets exactly creditsPerLane frames ahead of a receiver that reads nothing");
        assertTrue(send(t[0], 1, LANE + 1, 100, 50) >= 0, "a full lane does not hold up another lane");
        assertEquals(1, receive(t[1], 1 - 1, LANE, 1).size());
        final long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
        int after = Transport.BACK_PRESSURED;
        while (after == Transport.BACK_PRESSURED && System.nanoTime() - deadline < 0) {
            t[1].doHousekeeping(); // the receiver's credit update goes out on its progress path
            after = send(t[0], 1, LANE, 1000, 7);
        }
        assertTrue(after >= 0, "one consumed frame returns one credit");
        assertEquals(Transport.BACK_PRESSURED, send(t[0], 1, LANE, 1000, 8), "and only one");
        assertEquals(4, receive(t[1], 0, LANE, 10).size());
        assertNull(t[0].peerLost(1));
        assertNull(t[1].peerLost(0), "the receiver saw no overrun");
        close(t);
    }

    @Test
    void shouldDeliverEveryLaneInOrderOverSendAndWriteWithCompletionsReordered() {
        final int size = 3;
        final RdmaTransport[] t = job(size, 7);
        final int frames = 60;
        RankThreads.run(size, 30_000, rank -> {
            final int peerA = (rank + 1) % size;
            final int peerB = (rank + 2) % size;
            int next = 0;
            final List<List<Integer>> got = new ArrayList<>();
            for (int p = 0; p < size * 2; p++) {
                got.add(new ArrayList<>());
            }
            final long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
            while (System.nanoTime() - deadline < 0) {
                if (next < frames) {
                    final int length = next % 3 == 0 ? 1000 : next % 3 == 1 ? 200 : 257; // WRITE, SEND, WRITE
                    final int lane = 1 + next % 2;
                    if (send(t[rank], peerA, lane, length, next) >= 0) {
                        while (send(t[rank], peerB, lane, length, next) < 0) {
                            drain(t[rank], got, size);
                        }
                        next++;
                    }
                }
                drain(t[rank], got, size);
                if (next == frames && got.stream().mapToInt(List::size).sum() == 2 * frames) {
                    break;
                }
            }
            for (int from = 0; from < size; from++) {
                if (from == rank) {
                    continue;
                }
                for (int lane = 1; lane <= 2; lane++) {
                    final List<Integer> tags = got.get(from * 2 + lane - 1);
                    assertEquals(frames / 2, tags.size(), "frames from rank " + from + " on lane " + lane);
                    for (int i = 0; i < tags.size(); i++) {
                        final int frame = 2 * i + lane - 1;
                        final int length = frame % 3 == 0 ? 1000 : frame % 3 == 1 ? 200 : 257;
                        assertEquals(frame + 1000 * length, tags.get(i), "frame " + i + " from rank " + from + " lane " + lane);
                    }
                }
            }
        });
        close(t);
    }

    private static void drain(final Transport t, final List<List<Integer>> got, final int size) {
        for (int from = 0; from < size; from++) {
            if (from == t.rank()) {
                continue;
            }
            for (int lane = 1; lane <= 2; lane++) {
                final List<Integer> tags = got.get(from * 2 + lane - 1);
                t.poll(from, lane, (buffer, offset, length) -> {
                    tags.add((int) buffer.getByte(offset) + 1000 * length);
                    return FrameAction.CONTINUE;
                }, 16);
            }
        }
    }

    @Test
    void shouldRegisterChunkedRegionsOnceAndNeverPerMessage() {
        final int size = 4;
        final JobToken token = JobToken.generate();
        final InMemoryFabric fabric = new InMemoryFabric(size, 3);
        final RdmaTransport[] t = RdmaTestJob.open(fabric, rank -> RdmaTestJob.smallConfig(token, rank, size));
        final int atOpen = fabric.registrations(0);
        assertEquals(t[0].registrations(), atOpen);
        assertTrue(atOpen > 2, "a 32 KiB registration limit splits the per-peer blocks over several regions: " + atOpen);
        final List<Communicator> comms = new ArrayList<>();
        for (final RdmaTransport x : t) {
            comms.add(Communicators.create(x, RdmaTestJob.CONFIG));
        }
        RankThreads.run(size, 30_000, rank -> {
            for (int round = 0; round < 5; round++) {
                final float[] buf = RankThreads.values(round, rank, 30_000);
                comms.get(rank).allReduce(buf, 0, buf.length, ReduceOp.SUM);
            }
        });
        assertEquals(atOpen, fabric.registrations(0), "no registration after construction");
        comms.forEach(Communicator::close);
        final RdmaTransportConfig huge = RdmaTestJob.smallConfig(token, 0, 2).withFrames(64 * 1024, 16, 8, 256);
        final TransportException e = assertThrows(TransportException.class,
            () -> RdmaTransport.open(huge, new InMemoryFabric(2, 1).verbs(0)));
        assertTrue(e.getMessage().contains("does not fit one registration"), e.getMessage());
    }

    @Test
    void shouldFailThePeerNamingItsRankOnACompletionError() {
        final InMemoryFabric fabric = new InMemoryFabric(2, 5);
        final JobToken token = JobToken.generate();
        final RdmaTransport[] t = RdmaTestJob.open(fabric, rank -> RdmaTestJob.smallConfig(token, rank, 2));
        fabric.failNextPost(0, 1, InMemoryFabric.STATUS_RETRY_EXCEEDED);
        assertTrue(send(t[0], 1, LANE, 1000, 1) >= 0);
        t[0].doHousekeeping();
        final String why = t[0].peerLost(1);
        assertNotNull(why);
        assertTrue(why.startsWith("rank 1: RDMA WRITE completed with error status 12"), why);
        assertEquals(PeerFailureException.Reason.DISCONNECTED, t[0].peerState(1));
        t[1].doHousekeeping();
        assertNotNull(t[1].peerLost(0), "the other end sees its queue pair go down too");
        assertTrue(t[1].peerLost(0).startsWith("rank 0: "), t[1].peerLost(0));
        assertEquals(Transport.NOT_CONNECTED, send(t[0], 1, LANE, 100, 2));
        close(t);
    }

    @Test
    void shouldFailACollectiveWithinTheBoundNamingTheRankWhenAConnectionIsLost() {
        final List<Communicator> comms = new ArrayList<>();
        final InMemoryFabric fabric = new InMemoryFabric(3, 9);
        final JobToken token = JobToken.generate();
        for (final RdmaTransport x : RdmaTestJob.open(fabric, rank -> RdmaTestJob.smallConfig(token, rank, 3))) {
            comms.add(Communicators.create(x, RdmaTestJob.CONFIG));
        }
        fabric.kill(2);
        final long start = System.nanoTime();
        final PeerFailureException e = assertThrows(PeerFailureException.class,
            () -> comms.get(0).allReduce(new float[5000], 0, 5000, ReduceOp.SUM));
        assertTrue(System.nanoTime() - start < TimeUnit.SECONDS.toNanos(10), "failed within the op timeout");
        assertEquals(2, e.peer(), e.getMessage());
        assertTrue(e.getMessage().contains("rank 2"), e.getMessage());
    }

    @Test
    void shouldSeeAGoodbyeAsExitedAndKeepTheOtherPeersWorking() {
        final RdmaTransport[] t = job(3, 4);
        assertTrue(send(t[0], 2, LANE, 100, 1) >= 0);
        assertEquals(1, receive(t[2], 0, LANE, 1).size());
        t[1].close(); // says goodbye and disconnects: rank 0 must see EXITED, not a failure
        final long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
        while (t[0].peerState(1) == null && System.nanoTime() - deadline < 0) {
            t[0].doHousekeeping();
        }
        assertEquals(PeerFailureException.Reason.EXITED, t[0].peerState(1), String.valueOf(t[0].peerLost(1)));
        assertTrue(send(t[0], 2, LANE, 300, 5) >= 0, "rank 2 is still reachable");
        assertEquals(1, receive(t[2], 0, LANE, 1).size());
        RankThreads.run(2, 30_000, i -> t[i == 0 ? 0 : 2].close());
    }

    @Test
    void shouldFailBothEndsByNameWhenTheConnectionDrops() {
        final InMemoryFabric fabric = new InMemoryFabric(3, 6);
        final JobToken token = JobToken.generate();
        final RdmaTransport[] t = RdmaTestJob.open(fabric, rank -> RdmaTestJob.smallConfig(token, rank, 3));
        fabric.disconnect(0, 2);
        t[0].doHousekeeping();
        t[2].doHousekeeping();
        assertTrue(t[0].peerLost(2).startsWith("rank 2: connection lost (its queue pair disconnected without a goodbye"),
            t[0].peerLost(2));
        assertEquals(PeerFailureException.Reason.DISCONNECTED, t[2].peerState(0));
        assertTrue(t[2].peerLost(0).startsWith("rank 0: "), t[2].peerLost(0));
        assertNull(t[0].peerLost(1), "rank 1 is unaffected");
        assertTrue(send(t[0], 1, LANE, 300, 5) >= 0);
        assertEquals(1, receive(t[1], 0, LANE, 1).size());
        close(t);
    }

    @Test
    void shouldRefuseAPeerWithAnotherJobToken() {
        final InMemoryFabric fabric = new InMemoryFabric(2, 1);
        final JobToken good = JobToken.generate();
        final JobToken other = JobToken.generate();
        final Throwable[] errors = new Throwable[2];
        final Thread[] threads = new Thread[2];
        for (int r = 0; r < 2; r++) {
            final int rank = r;
            threads[r] = new Thread(() -> {
                try {
                    RdmaTransport.open(RdmaTestJob.smallConfig(rank == 0 ? good : other, rank, 2)
                        .withTimeouts(TimeUnit.SECONDS.toNanos(3), 0), fabric.verbs(rank)).close();
                } catch (final Throwable ex) {
                    errors[rank] = ex;
                }
            });
            threads[r].start();
        }
        for (final Thread th : threads) {
            try {
                th.join(20_000);
            } catch (final InterruptedException ex) {
                throw new AssertionError(ex);
            }
        }
        for (int r = 0; r < 2; r++) {
            assertNotNull(errors[r], "rank " + r + " must not accept the other");
            assertTrue(errors[r].getMessage().contains("rank " + (1 - r)), errors[r].getMessage());
        }
        assertTrue(errors[0].getMessage().contains("failed the job-token handshake")
            || errors[1].getMessage().contains("failed the job-token handshake"), errors[0] + " / " + errors[1]);
    }

    @Test
    void shouldTimeOutConnectingNamingTheMissingRank() {
        final InMemoryFabric fabric = new InMemoryFabric(2, 1);
        final TransportException e = assertThrows(TransportException.class, () -> RdmaTransport.open(
            RdmaTestJob.smallConfig(JobToken.generate(), 0, 2).withTimeouts(TimeUnit.MILLISECONDS.toNanos(300), 0),
            fabric.verbs(0)));
        assertTrue(e.getMessage().contains("to rank 1 within 300 ms"), e.getMessage());
    }

    @Test
    void shouldReportAGracefulCloseAsExitedOnlyAfterItsFramesAreConsumed() {
        final RdmaTransport[] t = job(2, 2);
        assertTrue(send(t[0], 1, LANE, 1000, 3) >= 0);
        final Thread closer = new Thread(t[0]::close);
        closer.start();
        final long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
        assertEquals(1, receive(t[1], 0, LANE, 1).size());
        while (t[1].peerState(0) == null && System.nanoTime() - deadline < 0) {
            t[1].doHousekeeping();
        }
        assertEquals(PeerFailureException.Reason.EXITED, t[1].peerState(0));
        assertEquals("rank 0 closed its transport", t[1].peerLost(0));
        try {
            closer.join(10_000);
        } catch (final InterruptedException ex) {
            throw new AssertionError(ex);
        }
        t[1].close();
    }

    private static void close(final RdmaTransport[] t) {
        RankThreads.run(t.length, 30_000, rank -> t[rank].close());
    }

    /** Records the shape of every work request a rank posts, around the in-memory verbs. */
    private static final class RecordingVerbs implements Verbs {
        private final Verbs inner;
        final java.util.Set<Long> sendShapes = java.util.concurrent.ConcurrentHashMap.newKeySet();
        final java.util.Map<Long, String> receiveBuffers = new java.util.concurrent.ConcurrentHashMap<>();
        final List<String> violations = new java.util.concurrent.CopyOnWriteArrayList<>();

        RecordingVerbs(final Verbs inner) {
            this.inner = inner;
        }

        @Override
        public MemoryRegion register(final java.nio.ByteBuffer direct) throws java.io.IOException {
            return inner.register(direct);
        }

        @Override
        public QueuePair connect(final int peer, final long timeoutNs) throws java.io.IOException {
            final QueuePair qp = inner.connect(peer, timeoutNs);
            return new QueuePair() {
                @Override
                public int peer() {
                    return qp.peer();
                }

                @Override
                public boolean postRecv(final long workId, final MemoryRegion region, final int offset, final int lengthBytes) {
                    final String buffer = region.address() + offset + "/" + lengthBytes;
                    final String before = receiveBuffers.putIfAbsent(workId, buffer);
                    if (before != null && !before.equals(buffer)) {
                        violations.add("receive " + workId + " reposted into " + buffer + ", was " + before);
                    }
                    return qp.postRecv(workId, region, offset, lengthBytes);
                }

                @Override
                public boolean postSend(final long workId, final MemoryRegion region, final int offset, final int lengthBytes,
                                        final int immediate) {
                    sendShapes.add((long) Completion.SEND << 32 | (immediate & 0xffffffffL));
                    return qp.postSend(workId, region, offset, lengthBytes, immediate);
                }

                @Override
                public boolean postWrite(final long workId, final MemoryRegion region, final int offset, final int lengthBytes,
                                         final long remoteAddress, final int remoteKey, final boolean withImmediate,
                                         final int immediate) {
                    sendShapes.add((long) (withImmediate ? Completion.RECV_WRITE_IMMEDIATE : Completion.WRITE) << 32
                        | (immediate & 0xffffffffL));
                    return qp.postWrite(workId, region, offset, lengthBytes, remoteAddress, remoteKey, withImmediate, immediate);
                }

                @Override
                public boolean connected() {
                    return qp.connected();
                }

                @Override
                public void close() {
                    qp.close();
                }
            };
        }

        @Override
        public int poll(final Completion[] out) {
            return inner.poll(out);
        }

        @Override
        public String describe() {
            return inner.describe();
        }

        @Override
        public void close() {
            inner.close();
        }
    }

    @Test
    void shouldPostFromAFixedSetOfWorkRequestsWhateverTheFrameLengths() {
        // DisniVerbs prepares each work request once and rewrites only ids, addresses, lengths and keys: it relies on
        // immediates that depend on kind and lane only, and on each receive id always naming the same buffer.
        final int size = 3;
        final JobToken token = JobToken.generate();
        final InMemoryFabric fabric = new InMemoryFabric(size, 9);
        final RecordingVerbs[] verbs = new RecordingVerbs[size];
        for (int r = 0; r < size; r++) {
            verbs[r] = new RecordingVerbs(fabric.verbs(r));
        }
        final RdmaTransport[] transports = new RdmaTransport[size];
        RankThreads.run(size, 30_000, rank -> transports[rank] = RdmaTransport.open(RdmaTestJob.smallConfig(token, rank, size),
            verbs[rank]));
        final List<Communicator> comms = new ArrayList<>();
        for (final RdmaTransport t : transports) {
            comms.add(Communicators.create(t, RdmaTestJob.CONFIG));
        }
        RankThreads.run(size, 60_000, rank -> {
            for (final int n : new int[] {1, 7, 100, 333, 5000, 20_001}) { // frames of many lengths, by SEND and by WRITE
                final float[] buf = RankThreads.values(rank, n, n);
                comms.get(rank).allReduce(buf, 0, n, ReduceOp.SUM);
            }
        });
        comms.forEach(Communicator::close);
        for (int r = 0; r < size; r++) {
            assertEquals(List.of(), verbs[r].violations, "rank " + r);
            // per kind of post: data by SEND and by WRITE with immediate on each of 5 lanes, handshake, goodbye, credit update
            assertTrue(verbs[r].sendShapes.size() <= 2 * RdmaTransport.LANES + 3, "rank " + r + " posted "
                + verbs[r].sendShapes.size() + " shapes of send: " + verbs[r].sendShapes.stream().map(Long::toHexString).toList());
            assertTrue(verbs[r].sendShapes.size() >= 3, "data, handshake and credit updates were posted");
            for (final long shape : verbs[r].sendShapes) {
                assertEquals(0, shape & 0xffffff, "rank " + r + ": an immediate carries kind and lane, never a length: "
                    + Long.toHexString(shape));
            }
        }
    }
}
