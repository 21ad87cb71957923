package io.moeflow.optimizer;

/**
 * A constant learning rate.
 *
 * @param lr the rate at every step, {@code >= 0} and finite
 */
public record ConstantLr(double lr) implements LrSchedule {

    /** Validates {@code lr}. */
    public ConstantLr {
        if (!(lr >= 0.0 && Double.isFinite(lr))) {
            throw new IllegalArgumentException("lr=" + lr + " must be >= 0 and finite");
        }
    }

    @Override
    public double lr(final long step) {
        LrSchedule.checkStep(step);
        return lr;
    }
}
