package io.moeflow.launcher;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;

import org.junit.jupiter.api.Test;

import io.moeflow.launcher.report.TransportBenchChart;

class GlooPeerTest {
    /** Lines as bench/torch_gloo_allreduce.py prints them (2026-12-03, shortened to two sizes). */
    private static final List<String> GLOO = List.of(
        "gloo-version torch=1.13.0a0 ranks=2",
        "gloo-allreduce bytes=8 count=2 iters=1000 mean_us=513.52 p50_us=55.01 algbw_gbps=0.000 busbw_gbps=0.000",
        "some warning from torch",
        "gloo-allreduce bytes=67108864 count=16777216 iters=20 mean_us=90000.00 p50_us=88000.00 algbw_gbps=0.746 busbw_gbps=0.746");

    @Test
    void shouldParseTheScriptsLinesAndIgnoreOthers() {
        assertEquals(List.of(new GlooPeer.Row(8, 1000, 513.52, 55.01, 0.0), new GlooPeer.Row(67108864, 20, 90000.0, 88000.0, 0.746)),
            GlooPeer.parse(GLOO));
    }

    @Test
    void shouldPrintTheRatiosAndJudgeTheAims() {
        final TransportBenchChart.Report ours = TransportBenchChart.parse(List.of(
            "             8          2    sum rec-dbl    1000       32.25        1.09       0.000       0.000          40",
            "      67108864   16777216    sum ring         20    24232.80    22817.12       2.769       2.769    67141696"
                + "    21000.00    20500.00       1.196      9.80      4.356    63.6%    27.4%"));
        final ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        GlooPeer.printComparison(GLOO, ours, new PrintStream(bytes, true, StandardCharsets.UTF_8));
        final String text = bytes.toString(StandardCharsets.UTF_8);
        assertTrue(text.contains("torch 1.13.0a0"), text);
        // 2.769 / 0.746 = 3.71x >= 2x; 55.01 / 1.09 = 50.5x >= 10x
        assertTrue(text.contains("= 3.71x gloo (aim >= 2x: met)"), text);
        assertTrue(text.contains("= 50.5x lower (aim >= 10x: met)"), text);
        assertTrue(text.contains("mean 32.2 us") || text.contains("mean 32.3 us"), text);
    }

    @Test
    void shouldSayWhyGlooCannotRun() {
        assertTrue(GlooPeer.unavailable(Path.of("/usr/bin/python3"), Path.of("/nonexistent/torch_gloo_allreduce.py"))
            .contains("missing"));
        assertTrue(GlooPeer.unavailable(Path.of("/nonexistent/python3"), Path.of("pom.xml")).contains("not an executable"));
    }
}
