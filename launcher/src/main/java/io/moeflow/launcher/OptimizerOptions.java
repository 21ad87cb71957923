package io.moeflow.launcher;

import io.moeflow.optimizer.AdamWConfig;
import io.moeflow.trainer.TrainerConfig.LrScheduleKind;
import picocli.CommandLine.Option;

/** AdamW and learning-rate options (a picocli mixin); defaults come from {@link AdamWConfig}. */
public final class OptimizerOptions {
    @Option(names = "--lr-schedule", paramLabel = "KIND", defaultValue = "CURRICULUM",
        description = "Where the learning rate comes from: ${COMPLETION-CANDIDATES} (curriculum = each stage's own rate). "
            + "Default: ${DEFAULT-VALUE}")
    LrScheduleKind lrSchedule;

    @Option(names = "--lr", paramLabel = "LR", defaultValue = "3e-4",
        description = "Learning rate for --lr-schedule constant, and the peak for cosine. Default: ${DEFAULT-VALUE}")
    double lr;

    @Option(names = "--min-lr", paramLabel = "LR", defaultValue = "3e-5",
        description = "Floor the cosine schedule decays to. Default: ${DEFAULT-VALUE}")
    double minLr;

    @Option(names = "--warmup-steps", paramLabel = "N",
        description = "Linear warmup over the first N steps, applied to any schedule (0 = none). Default: 5%% of "
            + "--steps (200 of 4,000)")
    Long warmupSteps;

    @Option(names = "--beta1", paramLabel = "B1", defaultValue = "" + AdamWConfig.DEFAULT_BETA1,
        description = "AdamW first-moment decay. Default: ${DEFAULT-VALUE}")
    double beta1;

    @Option(names = "--beta2", paramLabel = "B2", defaultValue = "" + AdamWConfig.DEFAULT_BETA2,
        description = "AdamW second-moment decay. Default: ${DEFAULT-VALUE}")
    double beta2;

    @Option(names = "--eps", paramLabel = "EPS", defaultValue = "" + AdamWConfig.DEFAULT_EPS,
        description = "AdamW epsilon. Default: ${DEFAULT-VALUE}")
    double eps;

    @Option(names = "--weight-decay", paramLabel = "WD", defaultValue = "" + AdamWConfig.DEFAULT_WEIGHT_DECAY,
        description = "Decoupled weight decay, on weight matrices only (not biases, norms, embeddings). "
            + "Default: ${DEFAULT-VALUE}")
    double weightDecay;

    @Option(names = "--grad-clip", paramLabel = "NORM", defaultValue = "" + AdamWConfig.DEFAULT_MAX_GRAD_NORM,
        description = "Clip the global gradient norm to this (0 = off). Default: ${DEFAULT-VALUE}")
    double gradClip;

    /** Share of the run's planned steps spent warming up unless --warmup-steps says otherwise. */
    static final double DEFAULT_WARMUP_SHARE = 0.05;

    /** --warmup-steps, or {@link #DEFAULT_WARMUP_SHARE} of {@code planSteps}. */
    long warmupSteps(final long planSteps) {
        return warmupSteps != null ? warmupSteps : Math.round(DEFAULT_WARMUP_SHARE * planSteps);
    }

    AdamWConfig toConfig() {
        return new AdamWConfig(beta1, beta2, eps, weightDecay, gradClip);
    }
}
