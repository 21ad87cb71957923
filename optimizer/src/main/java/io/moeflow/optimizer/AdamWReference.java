package io.moeflow.optimizer;

import java.util.List;
import java.util.Objects;

/**
 * The plain reference for {@link AdamW}: the published AdamW rule as scalar loops in double precision,
 * one element at a time, with no vector code and no rearranged arithmetic. It is slow on purpose and
 * exists so that tests can hold the fast optimizer to it (see {@code AdamWFastVsReferenceTest}).
 * Moments are stored as floats, like the fast one.
 *
 * <p>Reference: PyTorch {@code torch.optim.AdamW} documentation (algorithm box) and Loshchilov and
 * Hutter, "Decoupled Weight Decay Regularization", ICLR 2019, Algorithm 2.
 */
public final class AdamWReference implements AdamWUpdater {

    private final AdamWConfig config;
    private final SegmentLayout layout;
    private final float[] expAvg;
    private final float[] expAvgSq;
    private long stepCount;

    /** Same arguments and checks as {@link AdamW#AdamW(AdamWConfig, List)}. */
    public AdamWReference(final AdamWConfig config, final List<ParamSegment> segments) {
        this.config = Objects.requireNonNull(config, "config");
        this.layout = new SegmentLayout(segments);
        this.expAvg = new float[layout.slabLength()];
        this.expAvgSq = new float[layout.slabLength()];
    }

    /** Global L2 norm over the segments, one element at a time; scales by PyTorch's clip coefficient. */
    @Override
    public double clipGradNorm(final float[] grads) {
        layout.checkCoversSlab("grads", grads);
        double sumOfSquares = 0.0;
        for (int s = 0; s < layout.count(); s++) {
            for (int i = layout.offset(s); i < layout.end(s); i++) {
                sumOfSquares += (double) grads[i] * grads[i];              // sum of g^2 over all parameters
            }
        }
        final double norm = Math.sqrt(sumOfSquares);                       // ||g||_2
        final double coefficient = config.clipCoefficient(norm);           // min(1, max / (||g|| + 1e-6))
        if (coefficient < 1.0) {
            for (int s = 0; s < layout.count(); s++) {
                for (int i = layout.offset(s); i < layout.end(s); i++) {
                    grads[i] = (float) (grads[i] * coefficient);           // g = g * coef
                }
            }
        }
        return norm;
    }

    /** One AdamW update of every segment with learning rate {@code lr}. */
    @Override
    public void step(final float[] params, final float[] grads, final double lr) {
        if (!(lr >= 0.0 && Double.isFinite(lr))) {
            throw new IllegalArgumentException("lr=" + lr + " must be >= 0 and finite (step " + (stepCount + 1) + ")");
        }
        layout.checkCoversSlab("params", params);
        layout.checkCoversSlab("grads", grads);
        stepCount++;
        final long t = stepCount;                                                // t counts from 1
        final double beta1 = config.beta1();
        final double beta2 = config.beta2();
        final double bias1 = 1.0 - Math.pow(beta1, t);                           // bias correction 1 - beta1^t
        final double bias2 = 1.0 - Math.pow(beta2, t);                           // bias correction 1 - beta2^t
        for (int s = 0; s < layout.count(); s++) {
            final boolean decay = layout.decay(s);
            for (int i = layout.offset(s); i < layout.end(s); i++) {
                final double g = grads[i];
                double p = params[i];
                if (decay) {
                    p = p - lr * config.weightDecay() * p;                       // decoupled decay: p -= lr * wd * p
                }
                final double m = beta1 * expAvg[i] + (1.0 - beta1) * g;          // m_t = beta1 m_{t-1} + (1 - beta1) g
                final double v = beta2 * expAvgSq[i] + (1.0 - beta2) * g * g;   // v_t = beta2 v_{t-1} + (1 - beta2) g^2
                final double mHat = m / bias1;                                   // m_hat = m_t / (1 - beta1^t)
                final double vHat = v / bias2;                                   // v_hat = v_t / (1 - beta2^t)
                p = p - lr * mHat / (Math.sqrt(vHat) + config.eps());            // p -= lr m_hat / (sqrt(v_hat) + eps)
                params[i] = (float) p;
                expAvg[i] = (float) m;
                expAvgSq[i] = (float) v;
            }
        }
    }

    @Override
    public long stepCount() {
        return stepCount;
    }

    @Override
    public float[] expAvg() {
        return expAvg;
    }

    @Override
    public float[] expAvgSq() {
        return expAvgSq;
    }
}
