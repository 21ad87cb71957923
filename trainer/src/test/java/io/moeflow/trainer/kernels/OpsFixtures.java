package io.moeflow.trainer.kernels;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.SplittableRandom;

/** Random inputs and comparisons shared by the kernel tests. */
final class OpsFixtures {
    /**
     * How far a fast kernel may be from the reference: |fast - reference| &lt;= FAST_TOLERANCE * max|reference| over
     * the tensor. The fast kernels accumulate in float (fma chains up to a few hundred terms, ~1e-6 relative), use
     * a polynomial exp (~2 ulp) and the Abramowitz-Stegun erf (1.5e-7 absolute); the reference accumulates in double.
     */
    static final double FAST_TOLERANCE = 2e-5;
    /** Finite-difference tolerance: |fd - analytic| &lt;= FD_TOLERANCE * max|analytic| over the checked coordinates. */
    static final double FD_TOLERANCE = 1e-2;

    private OpsFixtures() {
    }

    static float[] random(final int n, final double scale, final long seed) {
        final SplittableRandom r = new SplittableRandom(seed);
        final float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = (float) ((r.nextDouble() * 2 - 1) * scale);
        }
        return a;
    }

    static int[] randomInts(final int n, final int bound, final long seed) {
        final SplittableRandom r = new SplittableRandom(seed);
        final int[] a = new int[n];
        for (int i = 0; i < n; i++) {
            a[i] = r.nextInt(bound);
        }
        return a;
    }

    static void assertClose(final String what, final float[] reference, final float[] fast) {
        assertClose(what, reference, fast, 0, reference.length);
    }

    static void assertClose(final String what, final float[] reference, final float[] fast, final int from,
        final int to) {
        double scale = 0;
        for (int i = from; i < to; i++) {
            scale = Math.max(scale, Math.abs(reference[i]));
        }
        double worst = 0;
        int at = -1;
        for (int i = from; i < to; i++) {
            final double err = Math.abs((double) reference[i] - fast[i]);
            assertTrue(Float.isFinite(fast[i]), what + ": non-finite fast value at " + i);
            if (err > worst) {
                worst = err;
                at = i;
            }
        }
        final double bound = FAST_TOLERANCE * Math.max(scale, 1e-30);
        assertTrue(worst <= bound, what + ": |fast - reference| = " + worst + " at " + at + " (reference " +
            (at >= 0 ? reference[at] : 0) + ", fast " + (at >= 0 ? fast[at] : 0) + ") exceeds " + bound);
    }

    /** Loss as a function of the (mutated in place) input array. */
    interface Loss {
        double eval();
    }

    /**
     * Central differences of {@code loss} with respect to {@code count} random coordinates of {@code input} in
     * [from, to), compared with {@code analytic} (same indexing as input).
     */
    static void assertGradient(final String what, final float[] input, final int from, final int to,
        final float[] analytic, final int count, final double eps, final Loss loss, final long seed) {
        final SplittableRandom r = new SplittableRandom(seed);
        final int n = Math.min(count, to - from);
        final double[] fd = new double[n];
        final double[] an = new double[n];
        final int[] idx = new int[n];
        double scale = 0;
        for (int j = 0; j < n; j++) {
            final int i = n == to - from ? from + j : from + r.nextInt(to - from);
            final float saved = input[i];
            input[i] = (float) (saved + eps);
            final double hPlus = input[i] - saved;
            final double plus = loss.eval();
            input[i] = (float) (saved - eps);
            final double hMinus = saved - input[i];
            final double minus = loss.eval();
            input[i] = saved;
            loss.eval();
            fd[j] = (plus - minus) / (hPlus + hMinus);
            an[j] = analytic[i];
            idx[j] = i;
            scale = Math.max(scale, Math.abs(an[j]));
        }
        assertTrue(scale > 0, what + ": analytic gradient is identically zero on the checked coordinates");
        for (int j = 0; j < n; j++) {
            final double err = Math.abs(fd[j] - an[j]);
            assertTrue(err <= FD_TOLERANCE * scale, what + "[" + idx[j] + "]: finite difference " + fd[j] +
                " vs analytic " + an[j] + " (tolerance " + FD_TOLERANCE * scale + ")");
        }
    }

    static double dot(final float[] r, final float[] y, final int from, final int to) {
        double s = 0;
        for (int i = from; i < to; i++) {
            s += (double) r[i] * y[i];
        }
        return s;
    }
}
