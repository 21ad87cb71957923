package io.moeflow.transport.aeron;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.IntFunction;

import org.agrona.CloseHelper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import io.moeflow.transport.Communicator;
import io.moeflow.transport.Communicators;
import io.moeflow.transport.FrameCountingTransport;
import io.moeflow.transport.IdleMode;
import io.moeflow.transport.JobFailureTest;
import io.moeflow.transport.RankThreads;
import io.moeflow.transport.ReduceOp;
import io.moeflow.transport.ReferenceCollectives;
import io.moeflow.transport.TransportCounters;
import io.moeflow.transport.bench.LoopbackPorts;

/**
 * HYBRID media in one JVM: ranks are threads with their own Aeron clients, "nodes" are shared media
 * drivers in separate directories (launched here, as node agents do), and the UDP path between nodes
 * runs over loopback through each rank's own driver.
 */
@Timeout(value = 180, unit = TimeUnit.SECONDS)
class AeronHybridTest {
    private static final int[] TWO_NODES = {0, 0, 1, 1};

    @Test
    void shouldRunEveryCollectiveOnTwoNodesWithTheReferenceBits() throws Exception {
        final int p = TWO_NODES.length;
        final float[][] out = new float[p][];
        final String[] described = new String[p];
        try (AeronTestJob job = new AeronTestJob(); NodeDrivers drivers = new NodeDrivers(job, TWO_NODES)) {
            final List<String> endpoints = LoopbackPorts.udpEndpoints(p);
            RankThreads.run(p, 120_000, rank -> {
                final AeronTransport transport = AeronTransport.connect(job.hybrid(rank, TWO_NODES, endpoints));
                described[rank] = transport.describe();
                try (Communicator c = Communicators.create(transport, AeronCollectivesTest.CONFIG)) {
                    out[rank] = AeronCollectivesTest.script(c);
                    final TransportCounters counters = c.counters();
                    assertEquals(0, counters.malformedFramesDropped() + counters.unauthenticatedFramesDropped()
                        + counters.handshakesRejected() + counters.forgedFramesDropped(), counters.toString());
                }
            });
            for (int r = 0; r < p; r++) {
                assertFalse(Files.exists(Paths.get(job.root.toString(), "aeron-own-" + r)), "rank " + r + "'s driver directory deleted");
            }
        }
        final float[][] inProcess = AeronCollectivesTest.runInProcess(p);
        for (int r = 0; r < p; r++) {
            assertArrayEquals(inProcess[r], out[r], "rank " + r + " over HYBRID differs from in-process");
            assertTrue(described[r].matches("aeron-hybrid:/dev/shm/.*/aeron-node-" + TWO_NODES[r] + "\\+/dev/shm/.*/aeron-own-" + r
                + "@127\\.0\\.0\\.1:[0-9]+"), described[r]);
        }
        assertScriptMatchesTheReference(out);
    }

    /** The all-reduces, the broadcast and the all-to-all of {@link AeronCollectivesTest#script} against the reference. */
    private static void assertScriptMatchesTheReference(final float[][] out) {
        final int p = out.length;
        final float[][] small = new float[p][];
        final float[][] large = new float[p][];
        final float[][] sends = new float[p][];
        final int[][] sendCounts = new int[p][p];
        for (int r = 0; r < p; r++) {
            small[r] = RankThreads.values(1, r, 5);
            large[r] = RankThreads.values(2, r, 300_001);
            for (int j = 0; j < p; j++) {
                sendCounts[r][j] = 1000 * (j + 1);
            }
            sends[r] = RankThreads.values(6, r, Arrays.stream(sendCounts[r]).sum());
        }
        final float[] expectedSmall = ReferenceCollectives.recursiveDoublingAllReduce(small, ReduceOp.SUM);
        final float[] expectedLarge = ReferenceCollectives.ringAllReduce(large, ReduceOp.AVERAGE);
        final float[][] roots = new float[p][70_000];
        roots[1] = RankThreads.values(5, 1, 70_000);
        final float[] expectedBroadcast = ReferenceCollectives.broadcast(roots, 1);
        final int broadcastAt = 5 + 300_001 + 10_000 + p * 1000;
        for (int r = 0; r < p; r++) {
            assertArrayEquals(expectedSmall, Arrays.copyOfRange(out[r], 0, 5), "rank " + r + " small all-reduce");
            assertArrayEquals(expectedLarge, Arrays.copyOfRange(out[r], 5, 5 + 300_001), "rank " + r + " large all-reduce");
            assertArrayEquals(expectedBroadcast, Arrays.copyOfRange(out[r], broadcastAt, broadcastAt + 70_000),
                "rank " + r + " broadcast");
            final float[] expectedAllToAll = ReferenceCollectives.allToAll(sends, sendCounts, r);
            final int allToAllAt = broadcastAt + 70_000;
            assertArrayEquals(expectedAllToAll, Arrays.copyOfRange(out[r], allToAllAt, allToAllAt + expectedAllToAll.length),
                "rank " + r + " all-to-all");
        }
    }

    @Test
    void shouldSendFarFewerFramesToTheSameNodePeerThanAcrossNodes() throws Exception {
        // each peer's payload is chunked at its own stream's largest frame: 64 KiB over IPC, one UDP MTU across
        final int p = TWO_NODES.length;
        final int n = 1_000_003;
        final int perPeer = 250_000;
        final float[][] inputs = new float[p][];
        final float[][] sends = new float[p][];
        final int[][] counts = new int[p][p];
        for (int r = 0; r < p; r++) {
            inputs[r] = RankThreads.values(71, r, n);
            sends[r] = RankThreads.values(72, r, p * perPeer);
            Arrays.fill(counts[r], perPeer);
        }
        final float[] expected = ReferenceCollectives.ringAllReduce(inputs, ReduceOp.SUM);
        final long[][] allReduceFrames = new long[p][p];
        final long[][] allReduceBytes = new long[p][p];
        final long[][] allToAllFrames = new long[p][p];
        try (AeronTestJob job = new AeronTestJob(); NodeDrivers drivers = new NodeDrivers(job, TWO_NODES)) {
            final List<String> endpoints = LoopbackPorts.udpEndpoints(p);
            RankThreads.run(p, 120_000, rank -> {
                // the MTUs of a real job (the other tests use 8 KiB over UDP)
                final FrameCountingTransport counting = new FrameCountingTransport(AeronTransport.connect(job.hybrid(rank, TWO_NODES,
                    endpoints).withTermAndMtu(1 << 20, AeronTransportConfig.DEFAULT_UDP_MTU_BYTES)));
                try (Communicator c = Communicators.create(counting, AeronCollectivesTest.CONFIG)) {
                    final float[] buf = inputs[rank].clone();
                    c.allReduce(buf, 0, n, ReduceOp.SUM);
                    assertArrayEquals(expected, buf, "rank " + rank + " all-reduce");
                    for (int peer = 0; peer < p; peer++) {
                        allReduceFrames[rank][peer] = counting.framesTo(peer);
                        allReduceBytes[rank][peer] = counting.bytesTo(peer);
                    }
                    final float[] received = new float[p * perPeer];
                    c.allToAll(sends[rank], 0, counts[rank], received, 0, counts[rank], null);
                    assertArrayEquals(ReferenceCollectives.allToAll(sends, counts, rank), received, "rank " + rank + " all-to-all");
                    for (int peer = 0; peer < p; peer++) {
                        allToAllFrames[rank][peer] = counting.framesTo(peer) - allReduceFrames[rank][peer];
                    }
                }
            });
        }
        long sameNodeFrames = 0;
        long sameNodeBytes = 0;
        long crossNodeFrames = 0;
        long crossNodeBytes = 0;
        for (int r = 0; r < p; r++) {
            for (int peer = 0; peer < p; peer++) {
                if (peer == r) {
                    continue;
                }
                final boolean sameNode = TWO_NODES[peer] == TWO_NODES[r];
                sameNodeFrames += sameNode ? allReduceFrames[r][peer] : 0;
                sameNodeBytes += sameNode ? allReduceBytes[r][peer] : 0;
                crossNodeFrames += sameNode ? 0 : allReduceFrames[r][peer];
                crossNodeBytes += sameNode ? 0 : allReduceBytes[r][peer];
                // the all-to-all sends every peer the same bytes: ~48x fewer frames to the node's other rank
                final int mate = r ^ 1;
                if (!sameNode) {
                    assertTrue(20 * allToAllFrames[r][mate] < allToAllFrames[r][peer], "rank " + r + " all-to-all frames to rank "
                        + mate + " (same node) " + allToAllFrames[r][mate] + ", to rank " + peer + " (other node) " + allToAllFrames[r][peer]);
                }
            }
        }
        // the all-reduce: frames per byte (its algorithm may send the two kinds of peers different amounts)
        assertTrue(sameNodeBytes > 0 && crossNodeBytes > 0, sameNodeBytes + " " + crossNodeBytes);
        assertTrue(20.0 * sameNodeFrames / sameNodeBytes < (double) crossNodeFrames / crossNodeBytes, "all-reduce: "
            + sameNodeFrames + " frames for " + sameNodeBytes + " bytes to same-node peers, " + crossNodeFrames + " for "
            + crossNodeBytes + " bytes across nodes");
    }

    @Test
    void shouldDropForgedDatagramsBetweenNodesAndKeepTheResult() throws Exception {
        // an on-path attacker between rank 0 (node 0) and rank 2 (node 1); rank 0 reaches rank 1 by IPC
        final int p = TWO_NODES.length;
        final int n = AeronFrameAuthenticationTest.N;
        final float[][] inputs = new float[p][];
        for (int r = 0; r < p; r++) {
            inputs[r] = RankThreads.values(61, r, n);
        }
        final float[] expected = ReferenceCollectives.recursiveDoublingAllReduce(inputs, ReduceOp.SUM);
        final TransportCounters[] counters = new TransportCounters[p];
        try (AeronTestJob job = new AeronTestJob(); NodeDrivers drivers = new NodeDrivers(job, TWO_NODES);
             AeronFrameAuthenticationTest.Relay relay = new AeronFrameAuthenticationTest.Relay(true)) {
            final List<String> real = LoopbackPorts.udpEndpoints(p);
            final String[] hostPort = real.get(2).split(":");
            relay.target = new InetSocketAddress(hostPort[0], Integer.parseInt(hostPort[1]));
            final List<String> viaRelay = new ArrayList<>(real);
            viaRelay.set(2, "127.0.0.1:" + relay.socket.getLocalPort());
            relay.start();
            RankThreads.run(p, 100_000, rank -> {
                try (Communicator c = Communicators.create(
                    AeronTransport.connect(job.hybrid(rank, TWO_NODES, rank == 0 ? viaRelay : real)), AeronCollectivesTest.CONFIG)) {
                    c.barrier(); // after it, rank 2 has authenticated rank 0's stream: its driver holds the key
                    if (rank == 2) {
                        relay.armed = true;
                    }
                    for (int round = 0; round < AeronFrameAuthenticationTest.ROUNDS; round++) {
                        final float[] buf = inputs[rank].clone();
                        c.allReduce(buf, 0, n, ReduceOp.SUM);
                        assertArrayEquals(expected, buf, "rank " + rank + " round " + round);
                    }
                    c.barrier();
                    counters[rank] = c.counters();
                }
            });
            assertTrue(relay.forged.get() >= 2 && relay.replays.get() >= 1, "the attacker acted: forged=" + relay.forged.get()
                + " replays=" + relay.replays.get());
            assertTrue(counters[2].forgedFramesDropped() >= relay.forged.get() + relay.replays.get(), counters[2].toString());
        }
    }

    @Test
    void shouldCarryAbortAcrossNodes() throws Exception {
        // ranks 0 and 1 share node 0, rank 2 (node 1) waits for rank 1: the ABORT reaches it over UDP
        final int[] nodes = {0, 0, 1};
        try (AeronTestJob job = new AeronTestJob(); NodeDrivers drivers = new NodeDrivers(job, nodes)) {
            final List<String> endpoints = LoopbackPorts.udpEndpoints(nodes.length);
            final List<Communicator> comms = connectAll(nodes.length, rank -> job.hybrid(rank, nodes, endpoints));
            try {
                JobFailureTest.assertAbortReachesARankWaitingForAHealthyPeer(comms);
            } finally {
                comms.forEach(Communicator::close);
            }
        }
    }

    @Test
    void shouldBehaveLikeIpcWhenEveryRankIsOnOneNode() throws Exception {
        final int[] nodes = {0, 0, 0};
        final int p = nodes.length;
        final float[][] out = new float[p][];
        final String[] described = new String[p];
        try (AeronTestJob job = new AeronTestJob(); NodeDrivers drivers = new NodeDrivers(job, nodes)) {
            RankThreads.run(p, 90_000, rank -> {
                // no endpoints at all: nothing goes over UDP, no own driver is launched
                final AeronTransport transport = AeronTransport.connect(job.hybrid(rank, nodes, List.of()));
                described[rank] = transport.describe();
                try (Communicator c = Communicators.create(transport, AeronCollectivesTest.CONFIG)) {
                    out[rank] = AeronCollectivesTest.script(c);
                    assertFalse(Files.exists(Paths.get(job.root.toString(), "aeron-own-" + rank)), "rank " + rank + " launched no driver");
                }
            });
        }
        final float[][] inProcess = AeronCollectivesTest.runInProcess(p);
        for (int r = 0; r < p; r++) {
            assertArrayEquals(inProcess[r], out[r], "rank " + r);
            assertTrue(described[r].contains("aeron-hybrid:/dev/shm/") && !described[r].contains("@"), described[r]);
        }
    }

    @Test
    void shouldBehaveLikeUdpWithOneRankPerNode() throws Exception {
        final int[] nodes = {0, 1, 2, 3};
        final int p = nodes.length;
        final float[][] out = new float[p][];
        final TransportCounters[] counters = new TransportCounters[p];
        // no node driver runs: a rank without peers on its node must not need one
        try (AeronTestJob job = new AeronTestJob()) {
            final List<String> endpoints = LoopbackPorts.udpEndpoints(p);
            RankThreads.run(p, 120_000, rank -> {
                try (Communicator c = Communicators.create(AeronTransport.connect(job.hybrid(rank, nodes, endpoints)),
                    AeronCollectivesTest.CONFIG)) {
                    out[rank] = AeronCollectivesTest.script(c);
                    counters[rank] = c.counters();
                }
            });
        }
        final float[][] inProcess = AeronCollectivesTest.runInProcess(p);
        for (int r = 0; r < p; r++) {
            assertArrayEquals(inProcess[r], out[r], "rank " + r);
            assertTrue(counters[r].framesReceived() > 100, counters[r].toString());
        }
        assertScriptMatchesTheReference(out);
    }

    @Test
    void shouldRefuseAPeerThatPlacesTheRanksOnOtherNodes() throws Exception {
        // rank 1 thinks rank 0 is on another node: one side expects IPC, the other UDP, and nobody connects
        try (AeronTestJob job = new AeronTestJob(); NodeDrivers drivers = new NodeDrivers(job, new int[] {0, 1})) {
            final List<String> endpoints = LoopbackPorts.udpEndpoints(2);
            final String[] messages = new String[2];
            RankThreads.run(2, 60_000, rank -> {
                final AeronTransportConfig config = job.hybrid(rank, rank == 0 ? new int[] {0, 0} : new int[] {1, 0}, endpoints)
                    .withTimeouts(TimeUnit.SECONDS.toNanos(2), 0);
                messages[rank] = assertThrows(io.moeflow.transport.TransportException.class,
                    () -> AeronTransport.connect(config)).getMessage();
            });
            for (int r = 0; r < 2; r++) {
                assertTrue(messages[r].contains("no authenticated connection with rank(s) [" + (1 - r) + "]"), messages[r]);
            }
        }
    }

    /** Connects every rank at once (each waits for the others' handshakes). */
    private static List<Communicator> connectAll(final int p, final IntFunction<AeronTransportConfig> config) {
        final Communicator[] comms = new Communicator[p];
        RankThreads.run(p, 60_000,
            rank -> comms[rank] = Communicators.create(AeronTransport.connect(config.apply(rank)), JobFailureTest.CONFIG));
        return new ArrayList<>(List.of(comms));
    }

    /** The shared driver of every node of a job, as the node agents launch them. */
    static final class NodeDrivers implements AutoCloseable {
        private final List<JobMediaDriver> drivers = new ArrayList<>();

        NodeDrivers(final AeronTestJob job, final int[] nodeOfRank) {
            for (int node = 0; node <= Arrays.stream(nodeOfRank).max().orElse(0); node++) {
                drivers.add(JobMediaDriver.launch(job.nodeDirectory(node), IdleMode.BACKOFF));
            }
        }

        @Override
        public void close() {
            CloseHelper.quietCloseAll(drivers);
        }
    }
}
