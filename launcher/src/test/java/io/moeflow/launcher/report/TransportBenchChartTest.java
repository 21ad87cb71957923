package io.moeflow.launcher.report;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import javax.imageio.ImageIO;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class TransportBenchChartTest {
    /** Lines of a real `moeflow bench transport` report (2026-11-29, rows shortened to three sizes). */
    private static final List<String> REPORT = List.of(
        "# moeflow bench transport: allreduce, 2 ranks (one JVM each), backend aeron-ipc, float32 on the wire, idle spin while measuring",
        "# host: 2 cores, Java 17.0.15. Times are per operation, averaged over ranks; p50 is rank 0's median.",
        "#      size(B)      count  redop algo      iters    time(us)     p50(us) algbw(GB/s) busbw(GB/s)  wire(B/op)",
        "             8          2    sum rec-dbl    1000       32.25        1.09       0.000       0.000          40",
        "        131072      32768    sum ring       1000      120.58       17.92       1.087       1.087      131200",
        "      67108864   16777216    sum ring         20    24232.80    22817.12       2.769       2.769    67141696",
        "#",
        "# at 67108864 B between the same processes, medians of 5 interleaved rounds of 4 iterations (one-way: rank 0 -> rank 1):",
        "#   allreduce (this run's operation)            :    3.158 GB/s busbw",
        "#   aeron ipc raw one-way (bytes, no copy out)  :   12.926 GB/s",
        "#   moeflow send/recv float[] one-way           :    6.198 GB/s",
        "#   tcp ring all-reduce (loopback sockets)      :    1.205 GB/s busbw",
        "# aims (issue 4):",
        "#   67108864 B all-reduce busbw / raw one-way aeron =  24.4%  (aim >= 60%: NOT met)",
        "#   8 B all-reduce p50 latency                =    1.1 us (aim < 50 us: met)");

    @Test
    void shouldReadTheRowsAndTheBaselinesOfAReport() {
        final TransportBenchChart.Report report = TransportBenchChart.parse(REPORT);
        assertTrue(report.title().startsWith("allreduce, 2 ranks"), report.title());
        final double nan = Double.NaN;
        assertEquals(List.of(new TransportBenchChart.Row(8, 32.25, 1.09, 0.0, nan, nan),
            new TransportBenchChart.Row(131072, 120.58, 17.92, 1.087, nan, nan),
            new TransportBenchChart.Row(67108864, 24232.80, 22817.12, 2.769, nan, nan)), report.rows());
        assertEquals(Map.of("allreduce (this run's operation)", 3.158, "aeron ipc raw one-way (bytes, no copy out)", 12.926,
            "moeflow send/recv float[] one-way", 6.198, "tcp ring all-reduce (loopback sockets)", 1.205), report.baselines());
    }

    @Test
    void shouldReadTheOffHeapAndBoundColumnsWhenARowHasThem() {
        final TransportBenchChart.Report report = TransportBenchChart.parse(List.of(
            "      67108864   16777216    sum ring         20    24232.80    22817.12       2.769       2.769    67141696"
                + "    21000.00    20500.00       3.196      9.80      4.356    63.6%    73.4%"));
        assertEquals(List.of(new TransportBenchChart.Row(67108864, 24232.80, 22817.12, 2.769, 3.196, 4.356)), report.rows());
    }

    @Test
    void shouldDrawBothPanelsIntoOnePng(@TempDir final Path dir) throws IOException {
        final Path file = dir.resolve("charts").resolve("sweep.png");
        assertTrue(TransportBenchChart.write(REPORT, file));
        final BufferedImage image = ImageIO.read(file.toFile());
        assertEquals(900, image.getWidth());
        assertEquals(450 + 350, image.getHeight(), "bandwidth above latency");
    }

    @Test
    void shouldDrawNothingForAReportWithoutRows(@TempDir final Path dir) {
        final Path file = dir.resolve("none.png");
        assertFalse(TransportBenchChart.write(List.of("# bench transport FAILED: worker exit codes [1, 0]"), file));
        assertFalse(Files.exists(file));
    }

    @Test
    void shouldLabelPowersOfTwoInBinaryUnits() {
        assertEquals("8 B", TransportBenchChart.sizeLabel(3));
        assertEquals("1 KiB", TransportBenchChart.sizeLabel(10));
        assertEquals("32 KiB", TransportBenchChart.sizeLabel(15));
        assertEquals("64 MiB", TransportBenchChart.sizeLabel(26));
        assertEquals("", TransportBenchChart.sizeLabel(12.5), "between powers of two");
        assertEquals("96 KiB", TransportBenchChart.bytesLabel(96 * 1024));
        assertEquals("1000 B", TransportBenchChart.bytesLabel(1000));
    }
}
