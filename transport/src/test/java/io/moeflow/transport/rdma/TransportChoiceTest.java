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

    private static List<TransportChoice.NodeRdma> nodes(final RdmaSupport.Status... probes) {
        final List<TransportChoice.NodeRdma> list = new java.util.ArrayList<>();
        for (int n = 0; n < probes.length; n++) {
            list.add(new TransportChoice.NodeRdma("node " + n + " (host h" + n + ")", probes[n]));
        }
        return list;
    }

    @Test
    void shouldPickRdmaInAutoOnlyWhereEveryNodeHasIt() {
        assertEquals(TransportChoice.Kind.RDMA, TransportChoice.resolve("auto", 2, nodes(YES)).kind());
        assertEquals(TransportChoice.Kind.RDMA, TransportChoice.resolve("auto", 2, nodes(YES, YES, YES)).kind());
        final TransportChoice local = TransportChoice.resolve("auto", 2, nodes(NO));
        assertEquals(TransportChoice.Kind.IPC, local.kind());
        assertTrue(local.reason().contains("one node") && local.reason().contains("libdisni"), local.reason());
        final TransportChoice across = TransportChoice.resolve(null, 2, nodes(YES, NO));
        assertEquals(TransportChoice.Kind.HYBRID, across.kind(), "ipc within a node, udp across");
        assertTrue(across.reason().contains("node 1 (host h1): RDMA unavailable: libdisni"), across.reason());
        assertEquals(TransportChoice.Kind.UDP, TransportChoice.resolve("auto", 1, nodes(NO, NO)).kind(), "one rank per node");
    }

    @Test
    void shouldFailRdmaWhereANodeLacksItInOneLineNamingTheNodeAndWhatIsMissing() {
        final TransportException e = assertThrows(TransportException.class,
            () -> TransportChoice.resolve("RDMA", 2, nodes(YES, NO, NO)));
        assertTrue(e.getMessage().startsWith("--transport rdma: node 1 (host h1): RDMA unavailable: libdisni"), e.getMessage());
        assertTrue(e.getMessage().contains("(and 1 other node lack RDMA too)"), e.getMessage());
        assertTrue(e.getMessage().contains("--transport auto to fall back to hybrid"), e.getMessage());
        assertFalse(e.getMessage().contains("\n"), "one line");
        final TransportException one = assertThrows(TransportException.class, () -> TransportChoice.resolve("rdma", 2, nodes(NO)));
        assertTrue(one.getMessage().endsWith("(or use --transport auto to fall back to ipc)"), one.getMessage());
    }

    @Test
    void shouldNotConsultTheProbeForExplicitUdpOrIpcAndRejectBadValues() {
        assertEquals(TransportChoice.Kind.UDP, TransportChoice.resolve("udp", 2, nodes(NO)).kind());
        assertEquals(TransportChoice.Kind.UDP, TransportChoice.resolve("udp", 2, nodes(YES, YES)).kind(), "udp even with RDMA");
        assertEquals(TransportChoice.Kind.IPC, TransportChoice.resolve("ipc", 2, nodes(YES)).kind());
        final IllegalArgumentException across = assertThrows(IllegalArgumentException.class,
            () -> TransportChoice.resolve("ipc", 2, nodes(NO, NO)));
        assertTrue(across.getMessage().startsWith("--transport ipc: the job spans 2 nodes"), across.getMessage());
        final IllegalArgumentException bad = assertThrows(IllegalArgumentException.class,
            () -> TransportChoice.resolve("tcp", 2, nodes(NO)));
        assertEquals("--transport tcp: must be one of auto|ipc|udp|rdma", bad.getMessage());
        assertEquals("udp", TransportChoice.checkFlag(" UDP "));
        assertEquals("auto", TransportChoice.checkFlag(null));
    }

    @Test
    void shouldCarryAProbeThroughARendezvousField() {
        assertEquals(YES, RdmaSupport.Status.ofField(YES.toField()));
        assertEquals(NO, RdmaSupport.Status.ofField(NO.toField()));
        assertFalse(RdmaSupport.Status.ofField(null).available(), "an agent that reported nothing lacks RDMA");
        assertEquals(TransportChoice.Kind.HYBRID, TransportChoice.Kind.ofWireName("hybrid"));
        assertThrows(IllegalArgumentException.class, () -> TransportChoice.Kind.ofWireName("tcp"));
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
