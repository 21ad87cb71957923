package io.moeflow.trainer.model;

import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * Central finite differences of the model's total loss against its analytic gradient.
 * <p>
 * Routing is piecewise constant in the parameters: a perturbation that changes any token's top-k choice or a
 * capacity drop makes the loss jump, and the difference quotient then measures the jump, not the derivative. We
 * detect that case by comparing the routing (selected experts and kept slots of every token and layer) at +eps and
 * -eps with the unperturbed one, skip those coordinates, and require that only a small share is skipped.
 */
final class GradCheck {
    /**
     * Per coordinate: |fd - analytic| &lt;= ABS_TOLERANCE + REL_TOLERANCE * max(|fd|, |analytic|). ABS_TOLERANCE
     * covers the float rounding of the loss (~1e-7 relative on a loss of ~3) divided by the 2e-2 step; REL_TOLERANCE
     * covers the O(eps^2) truncation of central differences.
     */
    static final double ABS_TOLERANCE = 3e-5;
    static final double REL_TOLERANCE = 2e-2;

    /**
     * maxRatio &lt;= 1 means every checked coordinate is within tolerance; it is NaN when any analytic gradient entry
     * (checked or not) or any checked loss or finite difference is not finite, so {@code maxRatio <= 1} fails then.
     */
    record Result(int checked, int skipped, double maxRatio, String worst) {
    }

    private GradCheck() {
    }

    /**
     * Checks {@code perTensor} random elements of every tensor (all of them for small tensors).
     * Reports the worst ratio of error to tolerance.
     */
    static Result check(final MoeModel model, final int[] tokens, final double eps, final int perTensor,
        final long seed) {
        model.forward(tokens);
        model.backward();
        final float[] analytic = model.grads().clone();
        for (final TensorView v : model.tensors()) {
            for (int i = v.offset(); i < v.offset() + v.length(); i++) {
                if (!Float.isFinite(analytic[i])) {
                    return new Result(0, 0, Double.NaN, v.name() + "[" + (i - v.offset()) + "] analytic=" + analytic[i]);
                }
            }
        }
        final int[] baseSelected = model.routingSelected().clone();
        final int[] baseSlots = model.routingSlots().clone();
        final float[] p = model.params();
        final SplittableRandom random = new SplittableRandom(seed);
        int checked = 0;
        int skipped = 0;
        double maxError = 0;
        String worst = "";
        for (final TensorView v : model.tensors()) {
            final int count = Math.min(perTensor, v.length());
            for (int j = 0; j < count; j++) {
                final int i = v.offset() + (count == v.length() ? j : random.nextInt(v.length()));
                final float saved = p[i];
                p[i] = (float) (saved + eps);
                final double plusEps = p[i] - saved;
                final double lossPlus = model.forward(tokens);
                final boolean samePlus = sameRouting(model, baseSelected, baseSlots);
                p[i] = (float) (saved - eps);
                final double minusEps = saved - p[i];
                final double lossMinus = model.forward(tokens);
                final boolean sameMinus = sameRouting(model, baseSelected, baseSlots);
                p[i] = saved;
                if (!samePlus || !sameMinus) {
                    skipped++;
                    continue;
                }
                final double fd = (lossPlus - lossMinus) / (plusEps + minusEps);
                final double a = analytic[i];
                final double err = Math.abs(fd - a) / (ABS_TOLERANCE + REL_TOLERANCE * Math.max(Math.abs(fd),
                    Math.abs(a)));
                checked++;
                // written so that a NaN error (a NaN loss or gradient) becomes the worst and stays NaN
                if (!(err <= maxError) && !Double.isNaN(maxError)) {
                    maxError = err;
                    worst = v.name() + "[" + (i - v.offset()) + "] fd=" + fd + " analytic=" + a;
                }
            }
        }
        return new Result(checked, skipped, maxError, worst);
    }

    private static boolean sameRouting(final MoeModel model, final int[] selected, final int[] slots) {
        return Arrays.equals(model.routingSelected(), selected) && Arrays.equals(model.routingSlots(), slots);
    }

    static int[] randomTokens(final ModelConfig c, final int batch, final long seed) {
        final SplittableRandom r = new SplittableRandom(seed);
        final int[] t = new int[batch * (c.seqLen() + 1)];
        for (int i = 0; i < t.length; i++) {
            t[i] = r.nextInt(c.vocabSize());
        }
        return t;
    }
}
