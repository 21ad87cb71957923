package io.moeflow.optimizer;

import java.util.List;
import java.util.Objects;

/**
 * AdamW (Loshchilov and Hutter, "Decoupled Weight Decay Regularization", ICLR 2019) over a flat
 * parameter slab: the update of PyTorch's {@code torch.optim.AdamW} (same formula, same arrangement of
 * the arithmetic), in float32.
 *
 * <p>For step {@code t} (counting from 1), learning rate {@code lr}, gradient {@code g} and each
 * parameter {@code p} of a segment:
 * <pre>
 *   p     = p * (1 - lr * weightDecay)           only if the segment is flagged decay
 *   m     = beta1 * m + (1 - beta1) * g          first moment  ({@link #expAvg()})
 *   v     = beta2 * v + (1 - beta2) * g * g      second moment ({@link #expAvgSq()})
 *   m_hat = m / (1 - beta1^t)                    bias corrections
 *   v_hat = v / (1 - beta2^t)
 *   p     = p - lr * m_hat / (sqrt(v_hat) + eps)
 * </pre>
 * The kernel evaluates this in PyTorch's arrangement ({@code lr / (1 - beta1^t)} as one step size,
 * {@code sqrt(v) / sqrt(1 - beta2^t) + eps} as the denominator) in a loop that C2 vectorises; it is
 * memory-bound (7 float streams), and a hand-written Vector API kernel measured no faster, so the plain
 * loop stays. {@link AdamWReference} is the same rule written plainly in double precision, and the tests
 * hold the two together.
 *
 * <p>Order of use, per training step, on one thread: {@link #clipGradNorm} (optional), then {@link #step}.
 * The same step on worker threads, bit for bit:
 * <ol>
 * <li>every {@link #normChunkSumOfSquares} partial, on any thread, into a {@code double[normChunkCount()]};</li>
 * <li>on one thread: add the partials in chunk order, {@code norm = sqrt(sum)},
 *     {@code factor = config().clipCoefficient(norm)}, then {@link #beginStep};</li>
 * <li>on each worker, for its range: {@link #scaleRange} (when {@code factor < 1}), then {@link #updateRange}.</li>
 * </ol>
 * The caller's hand-off to its workers (an executor, a barrier) must come after {@code beginStep}, and the
 * workers must finish before the next {@code beginStep}; this class adds no synchronisation of its own.
 * Each element's update depends only on that element and the step's constants, so any split into ranges
 * gives bit-for-bit the result of {@link #step}.
 *
 * <p>Memory: two float moments per parameter, i.e. 8 bytes per parameter on top of the parameters and
 * gradients, allocated once here. {@code step}, {@code updateRange}, {@code clipGradNorm} allocate
 * nothing once the JIT has compiled them.
 *
 * <p>State for checkpoints: {@link #stepCount()} ({@value #STATE_STEP}), {@link #expAvg()}
 * ({@value #STATE_EXP_AVG}) and {@link #expAvgSq()} ({@value #STATE_EXP_AVG_SQ}), restored with
 * {@link #restore}. The names are PyTorch's.
 */
public final class AdamW implements AdamWUpdater {

    /** Checkpoint name of the first moment {@code m}, as in PyTorch's optimizer state. */
    public static final String STATE_EXP_AVG = "exp_avg";
    /** Checkpoint name of the second moment {@code v}, as in PyTorch's optimizer state. */
    public static final String STATE_EXP_AVG_SQ = "exp_avg_sq";
    /** Checkpoint name of the step count {@code t}, as in PyTorch's optimizer state. */
    public static final String STATE_STEP = "step";

    /**
     * Length of the fixed chunks the global gradient norm is summed over: 16 Ki floats (64 KiB) is long
     * enough that the per-chunk overhead vanishes and short enough that a 2.3 M-float slab splits into
     * 141 chunks to spread over threads. Changing it changes the last bits of the norm.
     */
    public static final int NORM_CHUNK_LENGTH = 1 << 14;

    private final AdamWConfig config;
    private final SegmentLayout layout;
    private final float[] expAvg;
    private final float[] expAvgSq;

    // Constants of the rule, rounded to float once.
    private final float oneMinusBeta1;
    private final float beta2;
    private final float oneMinusBeta2;
    private final float eps;

    private long stepCount;
    private boolean stepBegun;
    // Constants of the current step, fixed by beginStep.
    private float stepSize;      // lr / (1 - beta1^t)
    private float bias2Sqrt;     // sqrt(1 - beta2^t)
    private float decayFactor;   // 1 - lr * weightDecay

    /**
     * Creates the optimizer and its zeroed moments.
     *
     * @param config   the hyperparameters
     * @param segments the parameter ranges; they may leave gaps (which are not updated) but may not
     *                 overlap, and their names must be unique; the slab length is {@code max(offset + length)}
     * @throws IllegalArgumentException naming the offending segment when the list is empty, has a null,
     *                                  a repeated name or two overlapping ranges
     */
    public AdamW(final AdamWConfig config, final List<ParamSegment> segments) {
        this.config = Objects.requireNonNull(config, "config");
        this.layout = new SegmentLayout(segments);
        this.expAvg = new float[layout.slabLength()];
        this.expAvgSq = new float[layout.slabLength()];
        this.oneMinusBeta1 = (float) (1.0 - config.beta1());
        this.beta2 = (float) config.beta2();
        this.oneMinusBeta2 = (float) (1.0 - config.beta2());
        this.eps = (float) config.eps();
    }

    /** The hyperparameters. */
    public AdamWConfig config() {
        return config;
    }

    /** The segments, in the order given to the constructor. */
    public List<ParamSegment> segments() {
        return layout.segments();
    }

    /** Number of slab elements the optimizer covers: {@code max(offset + length)} over the segments. */
    public int slabLength() {
        return layout.slabLength();
    }

    /**
     * Computes the global L2 norm of the gradients over all segments (gaps excluded) and, when it exceeds
     * the threshold, scales them in place by {@link AdamWConfig#clipCoefficient}: PyTorch's
     * {@code clip_grad_norm_} semantics, {@code coef = maxGradNorm / (norm + 1e-6)}, applied when
     * {@code coef < 1}. The sum of squares is taken in double over fixed chunks of the slab
     * ({@link #normChunkSumOfSquares}) added in chunk order, so a parallel caller that sums the same chunks
     * gets the same norm bit for bit, whatever its number of threads.
     *
     * @param grads the gradient slab, at least {@link #slabLength()} long
     * @return the norm before clipping (for the metrics' {@code grad_norm}); NaN or infinity leaves the
     *         gradients untouched, and the caller should then skip the step
     */
    @Override
    public double clipGradNorm(final float[] grads) {
        layout.checkCoversSlab("grads", grads);
        double sum = 0.0;
        for (int chunk = 0; chunk < normChunkCount(); chunk++) {
            sum += normChunkSumOfSquares(grads, chunk);
        }
        final double norm = Math.sqrt(sum);
        final double coefficient = config.clipCoefficient(norm);
        if (coefficient < 1.0) {
            scaleRange(grads, 0, layout.slabLength(), (float) coefficient);
        }
        return norm;
    }

    /** Number of fixed chunks of {@link #NORM_CHUNK_LENGTH} elements the slab is cut into for the global norm. */
    public int normChunkCount() {
        return (layout.slabLength() + NORM_CHUNK_LENGTH - 1) / NORM_CHUNK_LENGTH;
    }

    /**
     * Sum of squares, in double, of the gradient elements of chunk {@code chunk}
     * ({@code [chunk * NORM_CHUNK_LENGTH, (chunk + 1) * NORM_CHUNK_LENGTH)}) that lie in a segment. For a
     * parallel global norm equal to {@link #clipGradNorm}'s: compute every chunk's partial on any thread,
     * add the partials in chunk order, take the square root, then {@link AdamWConfig#clipCoefficient}.
     *
     * @param grads the gradient slab, at least {@link #slabLength()} long
     * @param chunk a chunk index in {@code [0, normChunkCount())}
     */
    public double normChunkSumOfSquares(final float[] grads, final int chunk) {
        layout.checkCoversSlab("grads", grads);
        if (chunk < 0 || chunk >= normChunkCount()) {
            throw new IllegalArgumentException("chunk=" + chunk + " must be in [0, normChunkCount()="
                    + normChunkCount() + ")");
        }
        final int from = chunk * NORM_CHUNK_LENGTH;
        final int to = Math.min(layout.slabLength(), from + NORM_CHUNK_LENGTH);
        double sum = 0.0;
        for (int s = layout.firstEndingAfter(from); s < layout.count() && layout.offset(s) < to; s++) {
            sum += sumOfSquares(grads, Math.max(from, layout.offset(s)), Math.min(to, layout.end(s)));
        }
        return sum;
    }

    /**
     * Multiplies the gradient elements in {@code [from, to)} that lie in a segment by {@code factor}
     * (gaps are left alone): the clip of {@link #clipGradNorm}, one range at a time, for parallel callers.
     */
    public void scaleRange(final float[] grads, final int from, final int to, final float factor) {
        layout.checkCoversSlab("grads", grads);
        layout.checkRange(from, to);
        for (int s = layout.firstEndingAfter(from); s < layout.count() && layout.offset(s) < to; s++) {
            scale(grads, Math.max(from, layout.offset(s)), Math.min(to, layout.end(s)), factor);
        }
    }

    /**
     * One full AdamW update of every segment: {@link #beginStep} then {@link #updateRange} over the whole
     * slab. Increments the step count.
     *
     * @param params the parameter slab, updated in place
     * @param grads  the gradient slab (already clipped if wanted), read only
     * @param lr     the learning rate of this step, {@code >= 0} and finite
     */
    @Override
    public void step(final float[] params, final float[] grads, final double lr) {
        // check the arrays before beginStep counts the step, so a rejected call leaves the state as it was
        layout.checkCoversSlab("params", params);
        layout.checkCoversSlab("grads", grads);
        beginStep(lr);
        updateRange(params, grads, 0, layout.slabLength());
    }

    /**
     * Starts a step for the parallel form: increments the step count and fixes the learning rate, the
     * bias corrections and the decay factor that the following {@link #updateRange} calls use.
     *
     * @param lr the learning rate of this step, {@code >= 0} and finite
     */
    public void beginStep(final double lr) {
        if (!(lr >= 0.0 && Double.isFinite(lr))) {
            throw new IllegalArgumentException("lr=" + lr + " must be >= 0 and finite (step " + (stepCount + 1) + ")");
        }
        stepCount++;
        final double bias1 = 1.0 - Math.pow(config.beta1(), stepCount);   // 1 - beta1^t
        final double bias2 = 1.0 - Math.pow(config.beta2(), stepCount);   // 1 - beta2^t
        stepSize = (float) (lr / bias1);
        bias2Sqrt = (float) Math.sqrt(bias2);
        decayFactor = (float) (1.0 - lr * config.weightDecay());
        stepBegun = true;
    }

    /**
     * Updates the parameters in {@code [from, to)} of the slab for the step begun by {@link #beginStep}:
     * the parts of segments inside the range are updated, gaps are skipped. Safe to call from several
     * threads at once on disjoint ranges.
     *
     * @param params the parameter slab, updated in place in {@code [from, to)}
     * @param grads  the gradient slab, read in {@code [from, to)}
     * @param from   first slab element, {@code >= 0}
     * @param to     one past the last element, {@code <= slabLength()}
     * @throws IllegalStateException when no step has been begun since construction or {@link #restore}
     */
    public void updateRange(final float[] params, final float[] grads, final int from, final int to) {
        if (!stepBegun) {
            throw new IllegalStateException("updateRange(from=" + from + ", to=" + to + ") before beginStep:"
                    + " call beginStep(lr) once per step, then updateRange");
        }
        layout.checkCoversSlab("params", params);
        layout.checkCoversSlab("grads", grads);
        layout.checkRange(from, to);
        for (int s = layout.firstEndingAfter(from); s < layout.count() && layout.offset(s) < to; s++) {
            final int lo = Math.max(from, layout.offset(s));
            final int hi = Math.min(to, layout.end(s));
            // multiplying by exactly 1.0f leaves an undecayed parameter bit-for-bit unchanged
            updateKernel(params, grads, lo, hi, layout.decay(s) ? decayFactor : 1.0f);
        }
    }

    /**
     * The AdamW rule on {@code [from, to)}, one independent element per iteration. The loop is written so
     * that C2's superword pass turns it into SIMD code (no calls, no branches, no loop-carried values;
     * 6 to 9 times faster than with {@code -XX:-UseSuperWord}); lanes do the same IEEE float operations as the
     * scalar form (Java never fuses or reorders them), so an element's result does not depend on where a
     * range starts.
     */
    private void updateKernel(final float[] p, final float[] g, final int from, final int to, final float decay) {
        final float[] m = expAvg;
        final float[] v = expAvgSq;
        final float b1c = oneMinusBeta1;
        final float b2 = beta2;
        final float b2c = oneMinusBeta2;
        final float e = eps;
        final float lrHat = stepSize;
        final float b2Sqrt = bias2Sqrt;
        // p, g, m, v: [to - from] slices of the slab
        for (int i = from; i < to; i++) {
            final float gi = g[i];
            // m = m + (1 - beta1) (g - m)        (= beta1 m + (1 - beta1) g, in PyTorch's lerp form)
            final float mi = m[i] + (gi - m[i]) * b1c;
            // v = beta2 v + (1 - beta2) g^2
            final float vi = v[i] * b2 + (gi * gi) * b2c;
            // denom = sqrt(v) / sqrt(1 - beta2^t) + eps   (= sqrt(v_hat) + eps)
            final float denom = (float) Math.sqrt(vi) / b2Sqrt + e;
            // p = p (1 - lr wd) - lr / (1 - beta1^t) * m / denom   (decay is 1 for undecayed segments)
            p[i] = p[i] * decay - (mi / denom) * lrHat;
            m[i] = mi;
            v[i] = vi;
        }
    }

    /**
     * Sum of squares of {@code x[from, to)} in double precision. The result depends only on the values and
     * on {@code from, to}; for a norm that does not change with the number of threads, sum fixed chunks
     * (not one range per thread) in a fixed order, as {@link #normChunkSumOfSquares} does.
     */
    public static double sumOfSquares(final float[] x, final int from, final int to) {
        Objects.checkFromToIndex(from, to, x.length);
        // eight independent accumulators hide the latency of the double adds (element i goes to
        // accumulator (i - from) % 8 in the body); they are combined in a fixed tree order
        double s0 = 0.0;
        double s1 = 0.0;
        double s2 = 0.0;
        double s3 = 0.0;
        double s4 = 0.0;
        double s5 = 0.0;
        double s6 = 0.0;
        double s7 = 0.0;
        int i = from;
        for (; i + 8 <= to; i += 8) {
            s0 += (double) x[i] * x[i];
            s1 += (double) x[i + 1] * x[i + 1];
            s2 += (double) x[i + 2] * x[i + 2];
            s3 += (double) x[i + 3] * x[i + 3];
            s4 += (double) x[i + 4] * x[i + 4];
            s5 += (double) x[i + 5] * x[i + 5];
            s6 += (double) x[i + 6] * x[i + 6];
            s7 += (double) x[i + 7] * x[i + 7];
        }
        for (; i < to; i++) {
            s0 += (double) x[i] * x[i];
        }
        return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7));
    }

    /** Multiplies {@code x[from, to)} by {@code factor} in place (the clip, applied range by range). */
    public static void scale(final float[] x, final int from, final int to, final float factor) {
        Objects.checkFromToIndex(from, to, x.length);
        for (int i = from; i < to; i++) {
            x[i] *= factor;
        }
    }

    /** Number of updates applied so far (PyTorch's {@code step}); bias corrections use it. */
    @Override
    public long stepCount() {
        return stepCount;
    }

    /** The first moment {@code m}, slab-sized; a live view that checkpoints copy. */
    @Override
    public float[] expAvg() {
        return expAvg;
    }

    /** The second moment {@code v}, slab-sized; a live view that checkpoints copy. */
    @Override
    public float[] expAvgSq() {
        return expAvgSq;
    }

    /**
     * Restores the state saved from {@link #stepCount()}, {@link #expAvg()} and {@link #expAvgSq()}; the
     * arrays are copied in. The next step continues exactly as the saved optimizer would have.
     *
     * @throws IllegalArgumentException when a length differs from the slab, the step count is negative,
     *                                  or a moment is NaN, infinite or (for {@code expAvgSq}) negative
     */
    public void restore(final long savedStepCount, final float[] savedExpAvg, final float[] savedExpAvgSq) {
        if (savedStepCount < 0) {
            throw new IllegalArgumentException(STATE_STEP + "=" + savedStepCount + " must be >= 0");
        }
        layout.checkSlabSized(STATE_EXP_AVG, savedExpAvg);
        layout.checkSlabSized(STATE_EXP_AVG_SQ, savedExpAvgSq);
        for (int i = 0; i < savedExpAvg.length; i++) {
            if (!Float.isFinite(savedExpAvg[i])) {
                throw new IllegalArgumentException(STATE_EXP_AVG + "[" + i + "]=" + savedExpAvg[i] + " must be finite");
            }
            if (!(savedExpAvgSq[i] >= 0.0f && Float.isFinite(savedExpAvgSq[i]))) {
                throw new IllegalArgumentException(STATE_EXP_AVG_SQ + "[" + i + "]=" + savedExpAvgSq[i]
                        + " must be >= 0 and finite");
            }
        }
        System.arraycopy(savedExpAvg, 0, expAvg, 0, expAvg.length);
        System.arraycopy(savedExpAvgSq, 0, expAvgSq, 0, expAvgSq.length);
        stepCount = savedStepCount;
        stepBegun = false;
    }
}
