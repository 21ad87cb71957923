package io.moeflow.trainer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.moeflow.curriculum.CurriculumConfig;
import io.moeflow.curriculum.Dataset;
import io.moeflow.optimizer.AdamWConfig;
import io.moeflow.trainer.model.ModelConfig;
import io.moeflow.trainer.parallel.ParallelConfig;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * A data-parallel job of 2 ranks (threads over the in-process transport) against the one-process run
 * on the same global batch.
 */
@Timeout(180)
class DataParallelEquivalenceTest {
    private final Dataset data = TinyRuns.builtin().training();
    private final ModelConfig model = TinyRuns.tinyModel(32);

    /** What a run leaves behind: the loss of every step, the last step's gradient and the parameters. */
    record Run(double[] losses, double[] crossEntropy, float[] grads, float[] params, float[] bias) {
    }

    private Run run(final int steps, final ParallelConfig parallel, final io.moeflow.transport.Communicator world) {
        final TrainerConfig config = TinyRuns.constantLr(steps, 1, 3e-3);
        try (Trainer t = new Trainer(config, model, AdamWConfig.defaults(),
            CurriculumConfig.defaults(CurriculumConfig.Kind.NONE, steps), data, parallel, world)) {
            final double[] losses = new double[steps];
            final double[] ce = new double[steps];
            for (int s = 0; s < steps; s++) {
                final StepMetrics m = t.trainStep();
                losses[s] = m.loss;
                ce[s] = m.crossEntropy;
            }
            return new Run(losses, ce, t.model().grads().clone(), t.model().params().clone(),
                t.model().expertBias(0).clone());
        }
    }

    @Test
    void shouldRunAWorldOfOneBitwiseLikeOneProcess() throws Exception {
        final Run single = run(3, ParallelConfig.SINGLE, null);
        final Run one = RankThreads.run(1, 60, (rank, world) -> run(3, ParallelConfig.dataParallel(1, 0), world)).get(0);
        assertArrayEquals(single.losses, one.losses, 0.0);
        assertArrayEquals(single.params, one.params);
    }

    /** max |a-b| / (max |a| + tiny) over the slab. */
    static void assertClose(final float[] expected, final float[] actual, final double tolerance, final String what) {
        double maxDiff = 0;
        double maxAbs = 0;
        int worst = -1;
        for (int i = 0; i < expected.length; i++) {
            final double d = Math.abs((double) expected[i] - actual[i]);
            if (d > maxDiff) {
                maxDiff = d;
                worst = i;
            }
            maxAbs = Math.max(maxAbs, Math.abs(expected[i]));
        }
        assertTrue(maxDiff <= tolerance * maxAbs, what + ": max difference " + maxDiff + " at " + worst
            + " exceeds " + tolerance + " x max |value| " + maxAbs);
    }
}
