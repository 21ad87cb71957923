package io.moeflow.trainer.parallel;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.SplittableRandom;

import org.junit.jupiter.api.Test;

class JobMetricsTest {
    @Test
    void shouldCarryADoubleExactlyInThreeFloats() {
        final SplittableRandom random = new SplittableRandom(3);
        final float[] buf = new float[3];
        for (int i = 0; i < 100_000; i++) {
            // losses and their parts: from 1e-9 (a tiny z-loss) to 1e3, with all 52 fraction bits in use
            final double d = Math.pow(10, -9 + 12 * random.nextDouble()) * (random.nextBoolean() ? 1 : -1);
            JobMetrics.split(d, buf, 0);
            assertEquals(Double.doubleToLongBits(d), Double.doubleToLongBits(JobMetrics.join(buf, 0)), "value " + d);
        }
    }

    @Test
    void shouldPassValuesThroughInOneProcess() {
        final JobMetrics m = new JobMetrics(null, 4);
        m.reduce(new float[] {1, 2, 3, 4}, 2.5, 0.01, 0.002, 3, true);
        assertEquals(2.5, m.crossEntropy(), 0.0);
        assertEquals(2.5 + 0.01 + 0.002, m.loss(), 0.0);
        assertEquals(3, m.droppedTokens());
        assertTrue(m.stopRequested());
    }
}
