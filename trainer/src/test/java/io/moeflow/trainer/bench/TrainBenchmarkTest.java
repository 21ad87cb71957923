package io.moeflow.trainer.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** The benchmark runs end to end and reports consistent figures (no timing is asserted). */
class TrainBenchmarkTest {
    @Test
    @Timeout(120)
    void shouldTrainTheBenchModelAndReportConsistentFigures() {
        final TrainBenchmark.Result r = TrainBenchmark.run(new TrainBenchmark.Config(2, 1, 3, 0));
        assertEquals(2, r.threads());
        assertTrue(r.msPerStep() > 0 && r.peakGflops() > 0, r.summary());
        assertEquals(r.msPerStep(), r.msForward() + r.msBackward() + r.msOptimizer(), 1e-6 * r.msPerStep());
        assertEquals(16 * 128 / r.msPerStep() * 1e3, r.tokensPerSecond(), 1e-6 * r.tokensPerSecond());
        // starts near ln(256) = 5.55 and AdamW at 3e-4 lowers the loss on the fixed batch within a few steps
        assertEquals(Math.log(256), r.firstLoss(), 0.2, r.summary());
        assertTrue(r.lastLoss() < r.firstLoss(), r.summary());
        assertTrue(r.summary().contains("tokens/s="));
    }

    @Test
    void shouldRejectNonsenseConfig() {
        assertThrows(IllegalArgumentException.class, () -> new TrainBenchmark.Config(0, 1, 1, 0));
        assertThrows(IllegalArgumentException.class, () -> new TrainBenchmark.Config(1, 1, 0, 0));
    }
}
