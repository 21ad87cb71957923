package io.moeflow.launcher;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class BenchScalingCommandTest {
    @TempDir
    Path run;

    @Test
    void shouldMeasureOnlyTheTimedStepsFromTheMetricsFile() throws IOException {
        final List<String> lines = new ArrayList<>();
        for (int step = 1; step <= 5; step++) {
            final boolean warm = step > 2;
            // warm-up steps are slow and must not count: 2,048 tokens per step
            lines.add(String.format("{\"step\":%d,\"step_ms\":%s,\"grad_wait_ms\":%s,\"tokens\":%d}", step, warm ? "100.0" : "900.0",
                warm ? "10.0" : "500.0", 2048L * step));
        }
        Files.write(run.resolve("metrics.jsonl"), lines);
        final BenchScalingCommand bench = new BenchScalingCommand();
        bench.warmup = 2;
        bench.steps = 3;
        final BenchScalingCommand.Row row = bench.measured("dp", 2, 1, run, 1234L);
        assertEquals(2048 * 3 / 0.3, row.tokensPerSecond(), 1e-6, "3 steps of 2,048 tokens in 300 ms");
        assertEquals(100.0, row.stepMs(), 1e-9);
        assertEquals(0.1, row.exposedShare(), 1e-12, "10 ms of 100 ms waiting for gradients");
        assertEquals(1234L, row.bytesPerStep());
    }

    @Test
    void shouldReportARunThatStoppedEarlyInsteadOfAFigure() throws IOException {
        Files.write(run.resolve("metrics.jsonl"), List.of("{\"step\":1,\"step_ms\":1.0,\"grad_wait_ms\":0.0,\"tokens\":2048}"));
        final BenchScalingCommand bench = new BenchScalingCommand();
        bench.warmup = 2;
        bench.steps = 3;
        final BenchScalingCommand.Row row = bench.measured("dp", 2, 1, run, null);
        assertTrue(Double.isNaN(row.tokensPerSecond()));
        assertTrue(row.note().contains("only 1 steps"), row.note());
    }
}
