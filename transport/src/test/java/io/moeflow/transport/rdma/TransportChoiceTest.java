package io.moeflow.transport.rdma;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import io.moeflow.transport.TransportException;

/** The --transport resolution and the RDMA probe's fallback and error paths (this host has no RDMA). */
class TransportChoiceTest {
    private static final RdmaSupport.Status YES = new RdmaSupport.Status(true, "");
    private static final RdmaSupport.Status NO = new RdmaSupport.Status(false, "libdisni (UnsatisfiedLinkError: no disni)");

    @Test
    void shouldPickRdmaInAutoOnlyWhereItIsAvailable() {
        assertEquals(TransportChoice.Kind.RDMA, TransportChoice.resolve("auto", true, () -> YES).kind());
        final TransportChoice local = TransportChoice.resolve("auto", true, () -> NO);
        assertEquals(TransportChoice.Kind.IPC, local.kind());
        assertTrue(local.reason().contains("all ranks on this host") && local.reason().contains("libdisni"), local.reason());
        assertEquals(TransportChoice.Kind.UDP, TransportChoice.resolve(null, false, () -> NO).kind());
    }

    @Test
    void shouldFailRdmaWithoutSupportInOneLineNamingWhatIsMissing() {
        final TransportException e = assertThrows(TransportException.class, () -> TransportChoice.resolve("RDMA", false, () -> NO));
        assertTrue(e.getMessage().startsWith("--transport rdma: RDMA unavailable: libdisni"), e.getMessage());
        assertTrue(e.getMessage().contains("--transport auto to fall back to udp"), e.getMessage());
        assertFalse(e.getMessage().contains("\n"), "one line");
    }

    @Test
    void shouldNotProbeForExplicitUdpOrIpcAndRejectBadValues() {
        final AtomicInteger probes = new AtomicInteger();
        assertEquals(TransportChoice.Kind.UDP, TransportChoice.resolve("udp", true, () -> {
            probes.incrementAndGet();
            return NO;
        }).kind());
        assertEquals(TransportChoice.Kind.IPC, TransportChoice.resolve("ipc", true, () -> NO).kind());
        assertEquals(0, probes.get());
        assertThrows(IllegalArgumentException.class, () -> TransportChoice.resolve("ipc", false, () -> NO));
        final IllegalArgumentException bad = assertThrows(IllegalArgumentException.class,
            () -> TransportChoice.resolve("tcp", true, () -> NO));
        assertTrue(bad.getMessage().contains("rdma|udp|ipc|auto"), bad.getMessage());
    }

    @Test
    void shouldNameEachMissingPieceAndNotLoadDisniWithoutTheRest(@TempDir final Path dir) throws IOException {
        final AtomicInteger loads = new AtomicInteger();
        final RdmaSupport.Status none = RdmaSupport.probe(dir.resolve("no-devices"), List.of(dir), () -> {
            loads.incrementAndGet();
            return null;
        });
        assertFalse(none.available());
        assertTrue(none.missing().contains("an RDMA device") && none.missing().contains("modprobe rdma_rxe"), none.missing());
        assertTrue(none.missing().contains("libibverbs.so.1") && none.missing().contains("librdmacm.so.1"), none.missing());
        assertEquals(0, loads.get(), "libdisni is not loaded while its dependencies are missing");

        final Path devices = Files.createDirectories(dir.resolve("infiniband/rxe0"));
        Files.createFile(dir.resolve("libibverbs.so.1"));
        Files.createFile(dir.resolve("librdmacm.so.1"));
        final RdmaSupport.Status noDisni = RdmaSupport.probe(devices.getParent(), List.of(dir),
            () -> new UnsatisfiedLinkError("no disni in java.library.path: /usr/lib\nsecond line"));
        assertFalse(noDisni.available());
        assertEquals("libdisni (UnsatisfiedLinkError: no disni in java.library.path: /usr/lib; build it from DiSNI 2.1's"
            + " libdisni/ directory and put it on LD_LIBRARY_PATH, see docs/rdma.md)", noDisni.missing());
        assertTrue(RdmaSupport.probe(devices.getParent(), List.of(dir), () -> null).available());
    }

    @Test
    void shouldProbeThisHostOnceWithoutThrowing() {
        final RdmaSupport.Status first = RdmaSupport.probe();
        assertSame(first, RdmaSupport.probe(), "probed once and remembered");
        if (!Files.isDirectory(Path.of("/sys/class/infiniband"))) {
            assertFalse(first.available(), first.describe());
            assertTrue(first.missing().contains("an RDMA device"), first.missing());
        }
    }

    @Test
    void shouldTurnALinkFailureAtConstructionIntoOneLineAndRememberIt() {
        RdmaSupport.forgetLinkFailureForTests();
        final AtomicInteger attempts = new AtomicInteger();
        final RdmaSupport.VerbsFactory broken = () -> {
            attempts.incrementAndGet();
            throw new UnsatisfiedLinkError("no disni in java.library.path: /usr/java/packages/lib");
        };
        final TransportException first = assertThrows(TransportException.class, () -> RdmaSupport.openChecked(broken));
        assertTrue(first.getMessage().startsWith("RDMA unavailable: libdisni could not be used (UnsatisfiedLinkError: no disni"),
            first.getMessage());
        final TransportException second = assertThrows(TransportException.class, () -> RdmaSupport.open(broken));
        assertTrue(second.getMessage().startsWith("RDMA unavailable:"), second.getMessage());
        assertEquals(1, attempts.get(), "the poisoned native class is never touched again");
    }

    @Test
    void shouldReportTheRealDisniLoadFailureOfThisHostInOneLine() {
        org.junit.jupiter.api.Assumptions.assumeFalse(RdmaSupport.probe().available(), "this host has RDMA");
        RdmaSupport.forgetLinkFailureForTests();
        final java.net.InetSocketAddress here = new java.net.InetSocketAddress("127.0.0.1", 7471);
        final TransportException e = assertThrows(TransportException.class,
            () -> RdmaSupport.openChecked(() -> new DisniVerbs(0, List.of(here), 64, 1_000_000_000L)));
        assertTrue(e.getMessage().startsWith("RDMA unavailable: libdisni could not be used (UnsatisfiedLinkError: no disni in"
            + " java.library.path"), e.getMessage());
        final TransportException again = assertThrows(TransportException.class,
            () -> RdmaSupport.open(() -> new DisniVerbs(0, List.of(here), 64, 1_000_000_000L)));
        assertTrue(again.getMessage().startsWith("RDMA unavailable"), again.getMessage());
        assertFalse(again.getMessage().contains("NoClassDefFoundError"), "the poisoned class was not touched again");
    }
}
