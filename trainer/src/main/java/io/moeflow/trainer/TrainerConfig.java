package io.moeflow.trainer;

import io.moeflow.trainer.kernels.Kernels;

/**
 * How a training run proceeds, apart from the model, optimizer and curriculum settings (which have
 * their own config records). Validated here; the launcher fills it from options.
 *
 * @param steps         total optimizer steps of the run (a resumed run continues up to this number)
 * @param batchSize     B, sequences per step
 * @param threads       worker threads including the training thread; 2 uses both cores of a 2-core machine
 * @param seed          initialises the model; the curriculum has its own seed in its config
 * @param lrSchedule    where each step's learning rate comes from
 * @param lr            peak/constant learning rate for {@code CONSTANT} and {@code COSINE}
 * @param minLr         the floor cosine decays to
 * @param warmupSteps   linear warmup at the start, applied to every schedule (0 = none)
 * @param kernels       FAST (Vector API, the default) or REFERENCE (plain loops, for debugging)
 * @param planSteps     the run length the schedules were planned for: the cosine decays over it (and
 *                      the launcher scales curriculum stages given in % by it); equal to {@code steps}
 *                      unless a finished run was extended, which keeps its plan (absolute steps) and
 *                      trains on at the plan's final rate
 */
public record TrainerConfig(long steps, int batchSize, int threads, long seed, LrScheduleKind lrSchedule,
                            double lr, double minLr, long warmupSteps, Kernels kernels, long planSteps) {

    /** A run whose plan is its own length ({@code planSteps = steps}). */
    public TrainerConfig(final long steps, final int batchSize, final int threads, final long seed,
                         final LrScheduleKind lrSchedule, final double lr, final double minLr, final long warmupSteps,
                         final Kernels kernels) {
        this(steps, batchSize, threads, seed, lrSchedule, lr, minLr, warmupSteps, kernels, steps);
    }

    /** Where the learning rate of each step comes from. */
    public enum LrScheduleKind {
        /** The rate the curriculum stage sets (staged curricula); the default. */
        CURRICULUM,
        /** {@code lr} at every step. */
        CONSTANT,
        /** Cosine decay from {@code lr} to {@code minLr} over the run. */
        COSINE
    }

    public TrainerConfig {
        if (steps < 1) {
            throw new IllegalArgumentException("steps=" + steps + " must be >= 1");
        }
        if (batchSize < 1) {
            throw new IllegalArgumentException("batchSize=" + batchSize + " must be >= 1");
        }
        if (threads < 1) {
            throw new IllegalArgumentException("threads=" + threads + " must be >= 1");
        }
        if (lrSchedule == null || kernels == null) {
            throw new IllegalArgumentException("lrSchedule=" + lrSchedule + " and kernels=" + kernels + " must be set");
        }
        if (!(lr > 0) || !Double.isFinite(lr)) {
            throw new IllegalArgumentException("lr=" + lr + " must be a finite number > 0");
        }
        if (!(minLr >= 0) || minLr > lr) {
            throw new IllegalArgumentException("minLr=" + minLr + " must be in [0, lr=" + lr + "]");
        }
        if (planSteps < 1) {
            throw new IllegalArgumentException("planSteps=" + planSteps + " must be >= 1");
        }
        if (warmupSteps < 0) {
            throw new IllegalArgumentException("warmupSteps=" + warmupSteps + " must be >= 0");
        }
    }
}
