package io.moeflow.optimizer;

/**
 * The learning rate as a function of the training step, counted from 0 (the first update uses
 * {@code lr(0)}). Implementations are pure functions of the step, so a resumed run gets the same rates
 * without saving any schedule state. The learning rate that the curriculum stage sets is a schedule too:
 * {@code LrSchedule stageLr = step -> curriculum.lrAt(step);}, optionally wrapped in {@link #withWarmup}.
 */
@FunctionalInterface
public interface LrSchedule {

    /**
     * The learning rate for {@code step}.
     *
     * @param step the 0-based step index, {@code >= 0}
     * @return a finite learning rate {@code >= 0}
     */
    double lr(long step);

    /** The same rate at every step. */
    static LrSchedule constant(final double lr) {
        return new ConstantLr(lr);
    }

    /**
     * Linear warmup to {@code peakLr}, then cosine decay to {@code minLr} at {@code totalSteps}; see
     * {@link WarmupCosineLr}.
     */
    static LrSchedule warmupCosine(final double peakLr, final long warmupSteps, final long totalSteps,
                                   final double minLr) {
        return new WarmupCosineLr(peakLr, warmupSteps, totalSteps, minLr);
    }

    /** {@code base} scaled by a linear warmup over the first {@code warmupSteps}; see {@link LinearWarmup}. */
    static LrSchedule withWarmup(final LrSchedule base, final long warmupSteps) {
        return new LinearWarmup(base, warmupSteps);
    }

    /** Fails unless {@code step >= 0}; for implementations. */
    static void checkStep(final long step) {
        if (step < 0) {
            throw new IllegalArgumentException("step=" + step + " must be >= 0 (steps count from 0)");
        }
    }
}
