package io.moeflow.optimizer;

/**
 * Linear warmup followed by cosine decay to a floor, the GPT-3 / nanoGPT schedule.
 * <pre>
 *   step &lt; warmupSteps:               lr = peakLr * (step + 1) / warmupSteps
 *   warmupSteps &lt;= step &lt; totalSteps: progress = (step - warmupSteps) / (totalSteps - warmupSteps)
 *                                     lr = minLr + (peakLr - minLr) * (1 + cos(pi * progress)) / 2
 *   step &gt;= totalSteps:               lr = minLr
 * </pre>
 * So {@code lr(0) = peakLr / warmupSteps}, the rate reaches {@code peakLr} at step {@code warmupSteps - 1}
 * and stays there at {@code warmupSteps}, falls to {@code (peakLr + minLr) / 2} half way through the
 * decay, and holds {@code minLr} from {@code totalSteps} on: training past the planned length continues at
 * the floor rather than failing or rising again.
 *
 * @param peakLr      the highest rate, {@code > 0} and finite
 * @param warmupSteps steps of linear warmup, {@code 0 <= warmupSteps <= totalSteps}; 0 starts at the peak
 * @param totalSteps  the step at which the decay reaches the floor, {@code >= 1}
 * @param minLr       the floor, {@code 0 <= minLr <= peakLr}
 */
public record WarmupCosineLr(double peakLr, long warmupSteps, long totalSteps, double minLr) implements LrSchedule {

    /** Validates the fields with {@code name=value} messages. */
    public WarmupCosineLr {
        if (!(peakLr > 0.0 && Double.isFinite(peakLr))) {
            throw new IllegalArgumentException("peakLr=" + peakLr + " must be > 0 and finite");
        }
        if (totalSteps < 1) {
            throw new IllegalArgumentException("totalSteps=" + totalSteps + " must be >= 1");
        }
        if (warmupSteps < 0 || warmupSteps > totalSteps) {
            throw new IllegalArgumentException("warmupSteps=" + warmupSteps + " must be in [0, totalSteps="
                    + totalSteps + "]");
        }
        if (!(minLr >= 0.0 && minLr <= peakLr)) {
            throw new IllegalArgumentException("minLr=" + minLr + " must be in [0, peakLr=" + peakLr + "]");
        }
    }

    @Override
    public double lr(final long step) {
        LrSchedule.checkStep(step);
        if (step < warmupSteps) {
            return peakLr * LinearWarmup.factor(step, warmupSteps);
        }
        if (step >= totalSteps) {
            return minLr;
        }
        final double progress = (double) (step - warmupSteps) / (totalSteps - warmupSteps);  // in [0, 1)
        return minLr + (peakLr - minLr) * 0.5 * (1.0 + Math.cos(Math.PI * progress));
    }
}
