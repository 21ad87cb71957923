package io.moeflow.trainer;

import java.util.ArrayList;
import java.util.List;

import io.moeflow.curriculum.BuiltinConfig;
import io.moeflow.curriculum.CurriculumConfig;
import io.moeflow.curriculum.Dataset;
import io.moeflow.curriculum.Sample;
import io.moeflow.optimizer.AdamWConfig;
import io.moeflow.trainer.TrainerConfig.LrScheduleKind;
import io.moeflow.trainer.kernels.Kernels;
import io.moeflow.trainer.model.ModelConfig;
import io.moeflow.trainer.model.RouterScore;

/** Small, fast configurations shared by the trainer tests. */
final class TinyRuns {
    private TinyRuns() {
    }

    /** C=32, one block, 4 experts top-2: a step takes about a millisecond. */
    static ModelConfig tinyModel(final int seqLen) {
        return new ModelConfig(256, seqLen, 32, 1, 2, 4, 2, 64, 0, RouterScore.SOFTMAX, 0.01, 0.001, false, 1e-3, 0.0,
            0.02);
    }

    static TrainerConfig constantLr(final long steps, final int threads, final double lr) {
        return new TrainerConfig(steps, 8, threads, 7, LrScheduleKind.CONSTANT, lr, 0, 0, Kernels.FAST);
    }

    static Dataset builtin() {
        return Dataset.builtin(new BuiltinConfig(List.of("arith", "copy", "pattern"), 400, 3));
    }

    static Trainer trainer(final TrainerConfig config, final ModelConfig model, final Dataset data) {
        return new Trainer(config, model, AdamWConfig.defaults(),
            CurriculumConfig.defaults(CurriculumConfig.Kind.NONE, config.steps()), data);
    }

    /** A handful of fixed arithmetic facts, for overfitting. */
    static Dataset facts() {
        final List<Sample> samples = new ArrayList<>();
        final String[] texts = {"1+2=3", "2+2=4", "3+4=7", "5+1=6"};
        for (final String t : texts) {
            samples.add(new Sample(t, 0.1, "arith", t.indexOf('=') + 1));
        }
        return Dataset.of("facts", samples);
    }
}
