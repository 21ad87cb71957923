package io.moeflow.optimizer;

/**
 * Hyperparameters of {@link AdamW}: the Adam moments, the decoupled weight decay and the global
 * gradient-norm clip. The learning rate is not here: it changes every step and comes from an
 * {@link LrSchedule} (or the curriculum stage) as an argument of {@link AdamW#step}.
 *
 * @param beta1       decay rate of the first moment (mean of gradients), in {@code [0, 1)}
 * @param beta2       decay rate of the second moment (mean of squared gradients), in {@code [0, 1)}
 * @param eps         added to {@code sqrt(v_hat)} in the denominator, {@code > 0} and finite; it must be
 *                    positive so that a parameter whose gradient has always been zero (an expert that
 *                    never received a token) gets {@code 0 / eps = 0}, not {@code 0 / 0 = NaN}
 * @param weightDecay decoupled weight decay coefficient, {@code >= 0} and finite; each step multiplies
 *                    decayed parameters by {@code 1 - lr * weightDecay}
 * @param maxGradNorm clip threshold for the global L2 norm of the gradients; {@code <= 0} disables
 *                    clipping (the norm is still computed and returned); must not be NaN or infinite
 */
public record AdamWConfig(double beta1, double beta2, double eps, double weightDecay, double maxGradNorm) {

    /**
     * 0.9: the Adam paper's value, used by every GPT-style recipe; it averages about the last 10 gradients.
     */
    public static final double DEFAULT_BETA1 = 0.9;

    /**
     * 0.95, not PyTorch's 0.999: GPT-3, nanoGPT and llm.c pre-train with 0.95 because a shorter memory of
     * squared gradients (about 20 steps) reacts to gradient spikes sooner and keeps language-model
     * training stable, which matters all the more for MoE routers whose gradients shift as load moves.
     */
    public static final double DEFAULT_BETA2 = 0.95;

    /** 1e-8: PyTorch's default; small against typical {@code sqrt(v_hat)}, and well inside float range. */
    public static final double DEFAULT_EPS = 1e-8;

    /**
     * 0.1: the GPT-3 / nanoGPT value, and what the project's PyTorch reference model
     * ({@code shared/bench/torch_moe_reference.py}) trains with, so the two runs are comparable.
     */
    public static final double DEFAULT_WEIGHT_DECAY = 0.1;

    /** 1.0: the GPT-3 / nanoGPT / llm.c clip; it only bites on the rare spikes of a healthy run. */
    public static final double DEFAULT_MAX_GRAD_NORM = 1.0;

    /**
     * Added to the norm in the clip coefficient {@code maxGradNorm / (norm + CLIP_NORM_EPS)}, exactly as
     * PyTorch's {@code clip_grad_norm_} does, so that a zero norm never divides by zero.
     */
    public static final double CLIP_NORM_EPS = 1e-6;

    /** Validates every field; a bad value fails with its {@code name=value}. */
    public AdamWConfig {
        if (!(beta1 >= 0.0 && beta1 < 1.0)) {
            throw new IllegalArgumentException("beta1=" + beta1 + " must be in [0, 1)");
        }
        if (!(beta2 >= 0.0 && beta2 < 1.0)) {
            throw new IllegalArgumentException("beta2=" + beta2 + " must be in [0, 1)");
        }
        if (!(eps > 0.0 && Double.isFinite(eps))) {
            throw new IllegalArgumentException("eps=" + eps + " must be > 0 and finite (an all-zero gradient"
                    + " would otherwise divide 0 by 0)");
        }
        if (!(weightDecay >= 0.0 && Double.isFinite(weightDecay))) {
            throw new IllegalArgumentException("weightDecay=" + weightDecay + " must be >= 0 and finite");
        }
        if (!Double.isFinite(maxGradNorm)) {
            throw new IllegalArgumentException("maxGradNorm=" + maxGradNorm
                    + " must be finite (use a value <= 0 to disable clipping)");
        }
    }

    /**
     * The defaults: {@code beta1=0.9, beta2=0.95, eps=1e-8, weightDecay=0.1, maxGradNorm=1.0}; see the
     * {@code DEFAULT_*} constants for why each has its value.
     */
    public static AdamWConfig defaults() {
        return new AdamWConfig(DEFAULT_BETA1, DEFAULT_BETA2, DEFAULT_EPS, DEFAULT_WEIGHT_DECAY, DEFAULT_MAX_GRAD_NORM);
    }

    /** A copy with another weight decay (0 turns decay off everywhere). */
    public AdamWConfig withWeightDecay(final double newWeightDecay) {
        return new AdamWConfig(beta1, beta2, eps, newWeightDecay, maxGradNorm);
    }

    /** A copy with another clip threshold ({@code <= 0} disables clipping). */
    public AdamWConfig withMaxGradNorm(final double newMaxGradNorm) {
        return new AdamWConfig(beta1, beta2, eps, weightDecay, newMaxGradNorm);
    }

    /** Whether {@link AdamW#clipGradNorm} may scale gradients ({@code maxGradNorm > 0}). */
    public boolean clippingEnabled() {
        return maxGradNorm > 0.0;
    }

    /**
     * The factor the gradients are multiplied by for a given global norm, following PyTorch's
     * {@code clip_grad_norm_}: {@code min(1, maxGradNorm / (totalNorm + 1e-6))}.
     *
     * <p>Returns exactly 1 (leave the gradients alone) when clipping is disabled, when the norm is at or
     * below the threshold, and when the norm is NaN or infinite: scaling cannot repair such gradients
     * (PyTorch would turn them into NaN or zero), so the caller should check the norm and skip the step.
     * For the parallel form: sum {@link AdamW#sumOfSquares} partials, take the square root, call this,
     * and {@link AdamW#scale} each range when the result is below 1.
     *
     * @param totalNorm the global L2 norm of all gradients
     * @return the scale factor, in {@code [0, 1]}
     */
    public double clipCoefficient(final double totalNorm) {
        if (!clippingEnabled() || !Double.isFinite(totalNorm)) {
            return 1.0;
        }
        return Math.min(1.0, maxGradNorm / (totalNorm + CLIP_NORM_EPS));
    }
}
