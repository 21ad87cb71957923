package io.moeflow.launcher;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.List;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import picocli.CommandLine;

import io.moeflow.transport.bench.BenchOp;
import io.moeflow.transport.bench.TransportBenchConfig;
import io.moeflow.transport.bench.WorkerSpec;
import io.moeflow.transport.fp8.Fp8Format;

class BenchTransportCommandTest {

    private static BenchTransportCommand parse(final String... args) {
        final BenchTransportCommand command = new BenchTransportCommand();
        new CommandLine(command).parseArgs(args);
        return command;
    }

    @Test
    void shouldMapTheIssuesCommandLineToTheBenchConfig() {
        final TransportBenchConfig config = parse("--ranks", "3", "--op", "alltoall", "--sizes", "8B..64MiB", "--backend", "udp",
            "--compression", "fp8-e4m3", "--iters", "7").config();
        assertEquals(3, config.ranks());
        assertEquals(BenchOp.ALLTOALL, config.op());
        assertEquals(8, config.minBytes());
        assertEquals(64L << 20, config.maxBytes());
        assertEquals(TransportBenchConfig.Backend.UDP, config.backend());
        assertEquals(Fp8Format.E4M3, config.compression());
        assertEquals(7, config.iterationsFor(1));
        assertTrue(config.baselines());
        final TransportBenchConfig hybrid = parse("--ranks", "4", "--backend", "hybrid", "--hybrid-ipc-mtu", "1408").config();
        assertEquals(TransportBenchConfig.Backend.HYBRID, hybrid.backend());
        assertEquals(1408, hybrid.hybridIpcMtuBytes());
        assertEquals(List.of(0, 0, 1, 1), List.of(hybrid.nodeOf(0), hybrid.nodeOf(1), hybrid.nodeOf(2), hybrid.nodeOf(3)));
        assertThrows(IllegalArgumentException.class, () -> parse("--ranks", "3", "--backend", "hybrid").config());
        final TransportBenchConfig defaults = parse().config();
        assertEquals(BenchOp.ALLREDUCE, defaults.op());
        assertEquals(TransportBenchConfig.Backend.IPC, defaults.backend());
        assertNull(defaults.compression());
        assertEquals(1000, defaults.iterationsFor(8), "small sizes get many iterations for a stable median");
        assertEquals(20, defaults.iterationsFor(64L << 20));
    }

    @Test
    void shouldRenderWorkerOptionsThatParseBackToTheSameRun() {
        final TransportBenchConfig config = parse("--ranks", "2", "--op", "broadcast", "--sizes", "1KiB..4MiB", "--backend", "udp",
            "--compression", "fp8-e5m2", "--no-baselines", "--udp-mtu", "1408", "--hybrid-ipc-mtu", "8192").config();
        final List<String> command = BenchTransportCommand.workerCommand(config, new WorkerSpec(1, Paths.get("/dev/shm/job"), "job-1",
            List.of("127.0.0.1:1", "127.0.0.1:2"), List.of(3, 4)));
        final int first = command.indexOf("transport") + 1;
        assertEquals(Main.class.getName(), command.get(command.indexOf("bench") - 1));
        final BenchTransportCommand worker = parse(command.subList(first, command.size()).toArray(new String[0]));
        assertEquals(config, worker.config());
        assertEquals(1, worker.workerRank);
        assertEquals(List.of("127.0.0.1:1", "127.0.0.1:2"), worker.workerUdpEndpoints);
        assertEquals(List.of(3, 4), worker.workerTcpPorts);
    }

    @Test
    void shouldParseByteSizesAndNameTheOptionOnBadInput() {
        assertEquals(8, ByteSizes.parse("--sizes", "8B"));
        assertEquals(64 << 10, ByteSizes.parse("--sizes", "64KiB"));
        assertEquals(64L << 20, ByteSizes.parse("--sizes", "64MiB"));
        assertEquals(1L << 30, ByteSizes.parse("--sizes", "1g"));
        assertEquals(4096, ByteSizes.parse("--sizes", "4096"));
        final IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> ByteSizes.parseRange("--sizes", "8X..1MiB"));
        assertEquals("--sizes: '8X' is not a size; write e.g. 8B, 64KiB, 64MiB or 1GiB", e.getMessage());
    }

    @Test
    void shouldExitWithUsageErrorOnInvalidOptions() {
        final PrintStream err = System.err;
        final ByteArrayOutputStream captured = new ByteArrayOutputStream();
        System.setErr(new PrintStream(captured, true, StandardCharsets.UTF_8));
        try {
            assertEquals(2, Main.run("bench", "transport", "--ranks", "1"));
            assertEquals(2, Main.run("bench", "transport", "--op", "gather"));
        } finally {
            System.setErr(err);
        }
        final String text = captured.toString(StandardCharsets.UTF_8);
        assertTrue(text.contains("moeflow bench transport: --ranks=1: must be in [2, 16]"), text);
        assertTrue(text.contains("--op=gather: give one of allreduce, reducescatter, allgather, alltoall, broadcast"), text);
    }

    @Test
    @Tag("slow")
    @Timeout(value = 300, unit = TimeUnit.SECONDS)
    void shouldPrintAnNcclTestsTableWithBaselinesFromRealWorkerJvms(@TempDir final Path dir) throws IOException {
        final Path chart = dir.resolve("sweep.png");
        final PrintStream out = System.out;
        final ByteArrayOutputStream captured = new ByteArrayOutputStream();
        System.setOut(new PrintStream(captured, true, StandardCharsets.UTF_8));
        final int code;
        final String home = System.getProperty("moeflow.home");
        System.setProperty("moeflow.home", ".."); // the repository root, where bench/torch_gloo_allreduce.py lives
        try {
            code = Main.run("bench", "transport", "--sizes", "8B..64KiB", "--iters", "10", "--warmup", "2", "--timeout", "240",
                "--chart", chart.toString());
        } finally {
            System.setOut(out);
            if (home == null) {
                System.clearProperty("moeflow.home");
            } else {
                System.setProperty("moeflow.home", home);
            }
        }
        final String text = captured.toString(StandardCharsets.UTF_8);
        System.out.println(text);
        assertEquals(0, code, text);
        assertTrue(text.contains("algbw(GB/s) busbw(GB/s)"), text);
        final long rows = text.lines().filter(l -> l.matches("\\s+\\d+\\s+\\d+\\s+sum\\s+\\S+\\s+10\\s+.*")).count();
        assertEquals(14, rows, "one row per size from 8 B to 64 KiB:\n" + text);
        assertTrue(text.contains("aeron ipc raw one-way"), text);
        assertTrue(text.contains("tcp ring all-reduce"), text);
        assertTrue(text.contains("8 B all-reduce p50 latency"), text);
        assertTrue(text.contains("off-busbw copy(GB/s)      bound float[]%     off%"), "off-heap and bound columns:\n" + text);
        assertTrue(text.contains("memory bound of rec-dbl") && text.contains("(5.00 passes per byte)"), text);
        assertTrue(text.contains("allreduce busbw / memory bound: float[]"), text);
        // where /usr/bin/python3 has torch with gloo the peer must run (a table and its two aims); elsewhere one line says why not
        final String glooMissing = GlooPeer.unavailable(Path.of("/usr/bin/python3"), Path.of("..", "bench", "torch_gloo_allreduce.py"));
        if (glooMissing == null) {
            assertTrue(text.contains("# gloo peer: torch.distributed all-reduce"), "gloo is available here, so it must run:\n" + text);
            assertTrue(text.contains("8 B latency: p50") && text.contains("65536 B busbw: float[]"), text);
        } else {
            assertTrue(text.contains("# gloo peer: skipped (" + glooMissing + ")"), text);
        }
        assertTrue(text.contains("chart: " + chart), text);
        final java.awt.image.BufferedImage image = javax.imageio.ImageIO.read(chart.toFile());
        assertEquals(900, image.getWidth(), "a PNG of the sweep");
    }
}
