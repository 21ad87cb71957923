package io.moeflow.trainer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.moeflow.curriculum.CurriculumConfig;
import io.moeflow.curriculum.Dataset;
import io.moeflow.optimizer.AdamWConfig;
import io.moeflow.trainer.TrainerConfig.LrScheduleKind;
import io.moeflow.trainer.kernels.Kernels;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

@Timeout(120)
class TrainerTest {
    private final Dataset data = TinyRuns.builtin().training();

    @Test
    void shouldLowerTheLossWellBelowTheUniformGuess() {
        final double[] ce = losses(TinyRuns.constantLr(120, 2, 3e-3));
        final double uniform = Math.log(256);
        assertTrue(ce[0] > uniform - 0.2, "an untrained model guesses about uniformly: first ce=" + ce[0]);
        final double last = mean(ce, ce.length - 10, ce.length);
        assertTrue(last < uniform - 2.0, "after 120 steps the cross-entropy should be far below ln 256; it is " + last);
    }

    @Test
    void shouldReproduceLossesAndParametersBitwiseForTheSameSeed() {
        final TrainerConfig config = TinyRuns.constantLr(15, 2, 1e-3);
        try (Trainer a = TinyRuns.trainer(config, TinyRuns.tinyModel(32), data);
             Trainer b = TinyRuns.trainer(config, TinyRuns.tinyModel(32), data)) {
            for (int s = 0; s < 15; s++) {
                assertEquals(Double.doubleToLongBits(a.trainStep().loss), Double.doubleToLongBits(b.trainStep().loss),
                    "loss of step " + (s + 1));
            }
            assertArrayEquals(a.model().params(), b.model().params());
            assertArrayEquals(a.optimizer().expAvgSq(), b.optimizer().expAvgSq());
        }
    }

    @Test
    void shouldGiveTheSameBitsOnOneOrTwoThreads() {
        final double[] one = losses(TinyRuns.constantLr(10, 1, 1e-3));
        final double[] two = losses(TinyRuns.constantLr(10, 2, 1e-3));
        assertArrayEquals(one, two, 0.0, "the thread count must not change a single bit of the losses");
    }

    @Test
    void shouldAllocateNothingPerStep() {
        try (Trainer trainer = TinyRuns.trainer(TinyRuns.constantLr(1_000_000, 2, 1e-3), TinyRuns.tinyModel(32), data)) {
            AllocationProbe.assertAllocatesNothing(trainer::trainStep,
                AllocationProbe.callerAndWorkers(trainer.model().parallel().workerThreadIds()), 300, 90_000_000_000L);
        }
    }

    @Test
    void shouldLogTheHeldOutLossWithoutChangingTheTraining() {
        final Dataset all = TinyRuns.builtin();
        final double[] plain = losses(TinyRuns.constantLr(12, 2, 1e-3));
        final double[] withEval = new double[12];
        final double[] evalLoss = new double[12];
        try (Trainer trainer = TinyRuns.trainer(TinyRuns.constantLr(12, 2, 1e-3), TinyRuns.tinyModel(32), data)) {
            trainer.evaluateEvery(all.heldOut(), 4, 64);
            final int[] i = {0};
            trainer.train(m -> {
                withEval[i[0]] = m.crossEntropy;
                evalLoss[i[0]++] = m.evalLoss;
            });
        }
        assertArrayEquals(plain, withEval, 0.0, "evaluating during training must not change a bit of it");
        for (int s = 0; s < 12; s++) {
            final boolean expected = (s + 1) % 4 == 0;
            assertEquals(expected, Double.isFinite(evalLoss[s]), "held-out loss after step " + (s + 1));
        }
        assertTrue(evalLoss[3] > evalLoss[11], "the held-out loss falls: " + evalLoss[3] + " -> " + evalLoss[11]);
    }

    @Test
    void shouldRefuseTheCurriculumLearningRateWithoutStages() {
        final TrainerConfig config = new TrainerConfig(10, 8, 1, 7, LrScheduleKind.CURRICULUM, 1e-3, 0, 0, Kernels.FAST);
        final IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
            () -> new Trainer(config, TinyRuns.tinyModel(32), AdamWConfig.defaults(),
                CurriculumConfig.defaults(CurriculumConfig.Kind.FIXED_LINEAR, 10), data).close());
        assertTrue(e.getMessage().contains("--lr-schedule"), e.getMessage());
    }

    @Test
    void shouldUseEachStagesLearningRate() {
        final TrainerConfig config = new TrainerConfig(10, 8, 1, 7, LrScheduleKind.CURRICULUM, 1e-3, 0, 0, Kernels.FAST);
        try (Trainer trainer = new Trainer(config, TinyRuns.tinyModel(32), AdamWConfig.defaults(),
            CurriculumConfig.defaults(CurriculumConfig.Kind.STAGED, 10, 1e-4), data)) {
            final double[] lr = new double[10];
            final String[] stage = new String[10];
            for (int s = 0; s < 10; s++) {
                final StepMetrics m = trainer.trainStep();
                lr[s] = m.lr;
                stage[s] = m.stageName;
            }
            // Default stages for 10 steps from base rate 1e-4 (1 : 0.5 : 0.2): 3 basic (1e-4), 4 intermediate (5e-5),
            // 3 expert (2e-5). The base is given explicitly so the test does not follow the --base-lr default.
            assertArrayEquals(new double[] {1e-4, 1e-4, 1e-4, 5e-5, 5e-5, 5e-5, 5e-5, 2e-5, 2e-5, 2e-5}, lr);
            assertArrayEquals(new String[] {"basic", "basic", "basic", "intermediate", "intermediate", "intermediate",
                "intermediate", "expert", "expert", "expert"}, stage);
        }
    }

    @Test
    void shouldStopWithAClearErrorWhenTrainingDiverges() {
        try (Trainer trainer = TinyRuns.trainer(TinyRuns.constantLr(50, 1, 1e30), TinyRuns.tinyModel(32), data)) {
            final TrainingDivergedException e = assertThrows(TrainingDivergedException.class, () -> {
                for (int s = 0; s < 50; s++) {
                    trainer.trainStep();
                }
            });
            assertTrue(e.getMessage().contains("lower the learning rate"), e.getMessage());
        }
    }

    private double[] losses(final TrainerConfig config) {
        try (Trainer trainer = TinyRuns.trainer(config, TinyRuns.tinyModel(32), data)) {
            final double[] ce = new double[(int) config.steps()];
            for (int s = 0; s < ce.length; s++) {
                ce[s] = trainer.trainStep().crossEntropy;
            }
            return ce;
        }
    }

    private static double mean(final double[] v, final int from, final int to) {
        double s = 0;
        for (int i = from; i < to; i++) {
            s += v[i];
        }
        return s / (to - from);
    }

}
