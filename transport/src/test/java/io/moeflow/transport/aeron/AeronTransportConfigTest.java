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
