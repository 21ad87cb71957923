package io.moeflow.launcher.report;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.List;

import org.junit.jupiter.api.Test;

import io.moeflow.trainer.StepMetrics;

class TrainingProgressTest {
    private static final long MS = 1_000_000L;
    private static final int TOKENS_PER_STEP = 1000;

    @Test
    void shouldShowTokensPerSecondOverTheWindowSinceThePreviousLineNotTheLastStepAlone() {
        // 10 ms per step (100k tokens/s), except step 11, which takes 100 ms (a checkpoint writer had the core)
        final List<String> lines = logLines(20, 20, 11, 100 * MS);
        assertEquals(20, lines.size(), "a run of 20 steps prints every 5%, that is every step: " + lines);
        assertTrue(lines.get(0).contains(" 100.0k tok/s "), "first line: the step's own rate: " + lines.get(0));
        assertTrue(lines.get(10).startsWith("step 11/20") && lines.get(10).contains(" 10.0k tok/s "),
            "the slow step itself: " + lines.get(10));
        assertTrue(lines.get(11).contains(" 100.0k tok/s "), "the step after it: " + lines.get(11));
    }

    @Test
    void shouldAverageOverEveryStepBetweenTwoLines() {
        // steps 12-21: 9 x 10 ms + 110 ms = 200 ms for 10,000 tokens
        final List<String> lines = logLines(200, 21, 15, 110 * MS);
        assertEquals(3, lines.size(), "lines at step 1 and every 5% (10 steps): " + lines);
        assertTrue(lines.get(1).startsWith("step 11/200") && lines.get(1).contains(" 100.0k tok/s "), "steps 2-11: " + lines.get(1));
        assertTrue(lines.get(2).startsWith("step 21/200") && lines.get(2).contains(" 50.0k tok/s "),
            "steps 12-21, 10,000 tokens in 200 ms (no single step ran at that rate): " + lines.get(2));
    }

    /** The log lines of a run of {@code totalSteps}, fed steps 1..lastStep of 10 ms each except {@code slowStep}. */
    private static List<String> logLines(final int totalSteps, final int lastStep, final int slowStep, final long slowStepNs) {
        final long[] now = {0};
        final ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        try (TrainingProgress progress = new TrainingProgress(0, totalSteps, false,
            new PrintStream(bytes, true, StandardCharsets.UTF_8), () -> now[0])) {
            for (int step = 1; step <= lastStep; step++) {
                final long stepNs = step == slowStep ? slowStepNs : 10 * MS;
                now[0] += stepNs;
                final StepMetrics m = new StepMetrics(1, 2);
                m.step = step;
                m.stageName = "basic";
                m.tokensConsumed = (long) step * TOKENS_PER_STEP;
                m.tokensPerSecond = TOKENS_PER_STEP / (stepNs / 1e9);
                progress.update(m);
            }
        }
        return bytes.toString(StandardCharsets.UTF_8).lines().toList();
    }
}
