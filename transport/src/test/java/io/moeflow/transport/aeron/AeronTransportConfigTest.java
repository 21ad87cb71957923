package io.moeflow.transport.aeron;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;

import org.junit.jupiter.api.Test;

import io.moeflow.transport.JobToken;

class AeronTransportConfigTest {
    private static final JobToken TOKEN = JobToken.generate();

    @Test
    void shouldFillDefaultsForIpcAndUdp() {
        final AeronTransportConfig ipc = AeronTransportConfig.ipc(1, 2, "/dev/shm/x", "job", TOKEN);
        assertEquals(AeronTransportConfig.DEFAULT_IPC_MTU_BYTES, ipc.mtuBytes());
        assertEquals(AeronTransportConfig.DEFAULT_TERM_LENGTH_BYTES, ipc.termLengthBytes());
        assertEquals(false, ipc.launchDriver());
        final AeronTransportConfig udp = AeronTransportConfig.udp(0, 2, "/dev/shm/y", List.of("127.0.0.1:1", "127.0.0.1:2"), "job", TOKEN);
        assertEquals(AeronTransportConfig.DEFAULT_UDP_MTU_BYTES, udp.mtuBytes());
        assertEquals(true, udp.launchDriver());
        assertTrue(udp.toString().contains("endpoints=[127.0.0.1:1, 127.0.0.1:2]"));
        assertTrue(!udp.toString().toLowerCase(java.util.Locale.ROOT).contains("token"), "the printed config never shows the token");
    }

    @Test
    void shouldRejectInconsistentSettingsNamingThem() {
        final AeronTransportConfig ipc = AeronTransportConfig.ipc(0, 2, "/dev/shm/x", "job", TOKEN);
        assertEquals("mtuBytes=65504 termLengthBytes=262144: the MTU may be at most an eighth of the term length; raise the term"
                + " length or lower the MTU",
            assertThrows(IllegalArgumentException.class, () -> ipc.withTermAndMtu(256 * 1024, 65504)).getMessage());
        assertTrue(assertThrows(IllegalArgumentException.class, () -> ipc.withTermAndMtu(3 << 20, 4096)).getMessage()
            .startsWith("termLengthBytes=3145728: must be a power of two"));
        assertTrue(assertThrows(IllegalArgumentException.class,
            () -> AeronTransportConfig.udp(0, 2, "/dev/shm/y", List.of("127.0.0.1:1"), "job", TOKEN)).getMessage()
            .contains("UDP needs one host:port per rank (2)"));
        assertTrue(assertThrows(IllegalArgumentException.class,
            () -> AeronTransportConfig.udp(0, 2, "/dev/shm/y", List.of("127.0.0.1:1", "localhost"), "job", TOKEN)).getMessage()
            .contains("'localhost' is not host:port"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> AeronTransportConfig.ipc(2, 2, "/dev/shm/x", "job", TOKEN))
            .getMessage().startsWith("rank=2 size=2"));
        assertEquals("failureBoundNs=100000000: must be in [200 ms, 10 min]",
            assertThrows(IllegalArgumentException.class, () -> ipc.withFailureBoundNs(100_000_000L)).getMessage());
    }

    @Test
    void shouldPlaceHybridPeersByNodeAndValidateTheirSettings() {
        final List<String> endpoints = List.of("10.0.0.1:1", "10.0.0.1:2", "10.0.0.2:1", "10.0.0.2:2");
        final int[] nodes = {0, 0, 1, 1};
        final AeronTransportConfig hybrid = AeronTransportConfig.hybrid(1, 4, "/dev/shm/j/node", "/dev/shm/j/own-1", endpoints, nodes,
            "job", TOKEN);
        assertEquals(AeronMedia.HYBRID, hybrid.media());
        assertEquals(List.of(true, true, false, false), List.of(hybrid.isIpcPeer(0), hybrid.isIpcPeer(1), hybrid.isIpcPeer(2),
            hybrid.isIpcPeer(3)));
        assertEquals(List.of(false, true, true), List.of(hybrid.authenticatesFramesOf(0), hybrid.authenticatesFramesOf(2),
            hybrid.authenticatesFramesOf(3)));
        assertEquals(false, hybrid.withFrameAuthentication(false).authenticatesFramesOf(2));
        assertEquals("/dev/shm/j/node", hybrid.ipcDirectory());
        assertEquals("/dev/shm/j/own-1", hybrid.udpDirectory());
        // each kind of peer has its own MTU: IPC's within the node, UDP's across (the term caps the IPC one)
        assertEquals(AeronTransportConfig.DEFAULT_IPC_MTU_BYTES, hybrid.mtuBytesOf(0));
        assertEquals(AeronTransportConfig.DEFAULT_UDP_MTU_BYTES, hybrid.mtuBytesOf(2));
        assertEquals(8192, hybrid.withTermAndMtu(64 * 1024, 1024).mtuBytesOf(0));
        assertEquals(1408, hybrid.withIpcMtu(1408).mtuBytesOf(0));
        assertEquals("ipcMtuBytes=100: must be a multiple of 32 in [1024, 65504]",
            assertThrows(IllegalArgumentException.class, () -> hybrid.withIpcMtu(100)).getMessage());
        assertEquals("ipcMtuBytes=1408: only HYBRID uses it; give 0 for UDP (its MTU is mtuBytes)",
            assertThrows(IllegalArgumentException.class, () -> AeronTransportConfig.udp(0, 2, "/dev/shm/y", endpoints.subList(0, 2),
                "job", TOKEN).withIpcMtu(1408)).getMessage());
        nodes[0] = 1; // the factory copied the array
        assertEquals(List.of(0, 0, 1, 1), hybrid.nodeOfRank());
        // degenerate: one node is IPC only, one rank per node UDP only
        final AeronTransportConfig oneNode = AeronTransportConfig.hybrid(0, 2, "/dev/shm/j/node", null, List.of(), new int[] {3, 3},
            "job", TOKEN);
        assertEquals("/dev/shm/j/node", oneNode.ipcDirectory());
        assertEquals(null, oneNode.udpDirectory());
        final AeronTransportConfig spread = AeronTransportConfig.hybrid(0, 2, "/dev/shm/j/node", "/dev/shm/j/own", endpoints.subList(1, 3),
            new int[] {0, 1}, "job", TOKEN);
        assertEquals(null, spread.ipcDirectory());
        assertEquals("/dev/shm/j/own", spread.udpDirectory());

        assertEquals("nodeOfRank=[0, 0, 1]: HYBRID needs the node index of every rank (4 entries, from the rendezvous)",
            assertThrows(IllegalArgumentException.class, () -> AeronTransportConfig.hybrid(0, 4, "/dev/shm/j/node", "/dev/shm/j/own",
                endpoints, new int[] {0, 0, 1}, "job", TOKEN)).getMessage());
        assertEquals("nodeOfRank=[0, -1]: rank 1 has no node index >= 0",
            assertThrows(IllegalArgumentException.class, () -> AeronTransportConfig.hybrid(0, 2, "/dev/shm/j/node", "/dev/shm/j/own",
                endpoints.subList(0, 2), new int[] {0, -1}, "job", TOKEN)).getMessage());
        assertTrue(assertThrows(IllegalArgumentException.class, () -> AeronTransportConfig.hybrid(0, 4, "/dev/shm/j/node", null,
            endpoints, new int[] {0, 0, 1, 1}, "job", TOKEN)).getMessage().startsWith("ownAeronDirectory=null: rank 0 has peers on"
            + " other nodes and needs its own driver's directory for UDP"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> AeronTransportConfig.hybrid(0, 4, "/dev/shm/j/node",
            "/dev/shm/j/node", endpoints, new int[] {0, 0, 1, 1}, "job", TOKEN)).getMessage().contains("must differ from"));
        assertEquals("endpoints=[10.0.0.1:1]: HYBRID needs one host:port per rank (4)",
            assertThrows(IllegalArgumentException.class, () -> AeronTransportConfig.hybrid(0, 4, "/dev/shm/j/node", "/dev/shm/j/own",
                endpoints.subList(0, 1), new int[] {0, 0, 1, 1}, "job", TOKEN)).getMessage());
        assertTrue(assertThrows(IllegalArgumentException.class, () -> new AeronTransportConfig(0, 2, AeronMedia.UDP, "/dev/shm/y", true,
            endpoints.subList(0, 2), "job", TOKEN, 1 << 20, 8192, 0, 1, 1, io.moeflow.transport.IdleMode.BACKOFF, true,
            JobMediaDriver.DEFAULT_FAILURE_BOUND_NS, null, List.of(0, 1), 0)).getMessage().contains("only HYBRID uses them"));
    }

    @Test
    void shouldTuneAeronLivenessToTheFailureBound() {
        final AeronTransportConfig ipc = AeronTransportConfig.ipc(0, 2, "/dev/shm/x", "job", TOKEN);
        assertEquals(JobMediaDriver.DEFAULT_FAILURE_BOUND_NS, ipc.failureBoundNs());
        assertEquals(2_000_000_000L, ipc.failureBoundNs(), "the issue's default bound: 2 s");
        assertEquals(5_000_000_000L, ipc.withFailureBoundNs(5_000_000_000L).failureBoundNs());
        // peers are declared gone after three quarters of the bound, checked every twentieth: the ABORT fits in the rest
        assertEquals(1_500_000_000L, JobMediaDriver.livenessTimeoutNs(ipc.failureBoundNs()));
        assertEquals(100_000_000L, JobMediaDriver.livenessIntervalNs(ipc.failureBoundNs()));
    }
}
