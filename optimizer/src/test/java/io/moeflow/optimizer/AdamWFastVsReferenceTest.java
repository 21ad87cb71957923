package io.moeflow.optimizer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/**
 * Holds the fast {@link AdamW} (float32, C2-vectorised loop) to the plain {@link AdamWReference} (double) over
 * many random steps with clipping, decay, gaps and a never-used expert.
 */
class AdamWFastVsReferenceTest {

    /**
     * Largest allowed {@code |fast - reference| / (|reference| + max|reference|)}, element by element, for
     * parameters and moments after all steps. The max term keeps elements that pass near zero from
     * turning one float ulp into a large relative error. The two implementations differ only by float32
     * rounding inside each step (about 6e-8 relative per operation), compounded over the steps; a wrong
     * formula (a missing bias correction, decay on the wrong segments, eps in the wrong place) is off by
     * the size of an update, about 1e-2 of the parameter scale.
     */
    static final double FAST_VS_REFERENCE_TOLERANCE = 1e-5;

    private static final int STEPS = 300;

    @Test
    void shouldMatchReferenceWithinToleranceOverManyRandomSteps() {
        final RandomSlab slab = new RandomSlab(20240611L, 24, 700);
        // maxGradNorm chosen so that some steps clip and others do not (norms here are ~1..80)
        final AdamWConfig config = new AdamWConfig(0.9, 0.95, 1e-8, 0.1, 10.0);
        final AdamW fast = new AdamW(config, slab.segments);
        final AdamWReference reference = new AdamWReference(config, slab.segments);
        final LrSchedule schedule = LrSchedule.warmupCosine(3e-3, 20, STEPS, 3e-4);
        final float[] fastParams = slab.params();
        final float[] referenceParams = slab.params();
        int clippedSteps = 0;

        for (int step = 0; step < STEPS; step++) {
            final float[] grads = slab.nextGrads();
            final float[] gradsCopy = grads.clone();
            final double fastNorm = fast.clipGradNorm(grads);
            final double referenceNorm = reference.clipGradNorm(gradsCopy);
            assertEquals(referenceNorm, fastNorm, 1e-12 * referenceNorm, "grad norm at step " + step);
            if (fastNorm > config.maxGradNorm()) {
                clippedSteps++;
            }
            fast.step(fastParams, grads, schedule.lr(step));
            reference.step(referenceParams, gradsCopy, schedule.lr(step));
        }

        assertTrue(clippedSteps > 0 && clippedSteps < STEPS, "clipped " + clippedSteps + " of " + STEPS + " steps");
        final double paramError = maxRelativeError(fastParams, referenceParams);
        final double mError = maxRelativeError(fast.expAvg(), reference.expAvg());
        final double vError = maxRelativeError(fast.expAvgSq(), reference.expAvgSq());
        System.out.printf("fast vs reference after %d steps: max rel. error params %.2e, m %.2e, v %.2e%n",
                STEPS, paramError, mError, vError);
        assertTrue(paramError <= FAST_VS_REFERENCE_TOLERANCE, "params differ by " + paramError);
        assertTrue(mError <= FAST_VS_REFERENCE_TOLERANCE, "exp_avg differs by " + mError);
        assertTrue(vError <= FAST_VS_REFERENCE_TOLERANCE, "exp_avg_sq differs by " + vError);
        assertEquals(reference.stepCount(), fast.stepCount());
    }

    /** max over i of |a - b| / (|b| + max|b|); NaN in one but not the other counts as infinite. */
    private static double maxRelativeError(final float[] fast, final float[] reference) {
        double scale = 0.0;
        for (final float r : reference) {
            if (!Float.isNaN(r)) {
                scale = Math.max(scale, Math.abs(r));
            }
        }
        double worst = 0.0;
        for (int i = 0; i < reference.length; i++) {
            if (Float.isNaN(reference[i]) && Float.isNaN(fast[i])) {
                continue;      // a gap: NaN in both, untouched by both
            }
            final double error = Math.abs((double) fast[i] - reference[i]) / (Math.abs(reference[i]) + scale);
            worst = Double.isNaN(error) ? Double.POSITIVE_INFINITY : Math.max(worst, error);
        }
        return worst;
    }
}
