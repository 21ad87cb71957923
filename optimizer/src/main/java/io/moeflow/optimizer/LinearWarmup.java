package io.moeflow.optimizer;

import java.util.Objects;

/**
 * Scales another schedule by a linear warmup: {@code base.lr(step) * (step + 1) / warmupSteps} for the
 * first {@code warmupSteps} steps, then {@code base.lr(step)}. Use it to ramp into a curriculum stage's
 * learning rate. The ramp starts at {@code 1 / warmupSteps} (not 0, so step 0 is not wasted) and reaches
 * the full rate at step {@code warmupSteps - 1}.
 *
 * @param base        the schedule to scale
 * @param warmupSteps length of the ramp, {@code >= 0}; 0 means no warmup
 */
public record LinearWarmup(LrSchedule base, long warmupSteps) implements LrSchedule {

    /** Validates the fields. */
    public LinearWarmup {
        Objects.requireNonNull(base, "base");
        if (warmupSteps < 0) {
            throw new IllegalArgumentException("warmupSteps=" + warmupSteps + " must be >= 0");
        }
    }

    @Override
    public double lr(final long step) {
        return base.lr(step) * factor(step, warmupSteps);
    }

    /** The warmup multiplier {@code min(1, (step + 1) / warmupSteps)}; 1 when {@code warmupSteps == 0}. */
    static double factor(final long step, final long warmupSteps) {
        LrSchedule.checkStep(step);
        return step < warmupSteps ? (double) (step + 1) / warmupSteps : 1.0;
    }
}
