package io.moeflow.trainer;

/** The loss or the gradient norm stopped being a finite number: training cannot go on from here. */
public final class TrainingDivergedException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public TrainingDivergedException(final long step, final double loss, final double gradNorm, final double lr) {
        super("training diverged at step " + step + ": loss=" + loss + ", grad_norm=" + gradNorm + ", lr=" + lr
            + "; lower the learning rate (--lr or the stage rates) or tighten --grad-clip, then resume from the last"
            + " checkpoint");
    }
}
