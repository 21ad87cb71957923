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
    /**
     * Finite-difference tolerance per checked coordinate: |fd - analytic| &lt;= abs + FD_REL_TOLERANCE *
     * max(|fd|, |analytic|), with abs = FD_ABS_TOLERANCE for every op but the router. Sized to the measured error
     * (run with -Dmoeflow.fd.report=true to print it): the worst is 4.1e-5 (layerNorm dx) on all ops with a 1e-2
     * step, so that a bug confined to the small entries of a gradient no longer hides under a tolerance scaled by
     * the tensor's largest entry (as the former 1e-2 * max|analytic| did).
     */
    static final double FD_ABS_TOLERANCE = 1e-4;
    /** The router's step is 1e-3 (no routing flip), so the loss's float rounding weighs ten times more: worst 8.8e-5. */
    static final double FD_ROUTER_ABS_TOLERANCE = 2.5e-4;
    /** Covers the O(eps^2) truncation of central differences on the largest entries. */
    static final double FD_REL_TOLERANCE = 1e-3;

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
        assertGradient(what, input, from, to, analytic, count, eps, loss, seed, FD_ABS_TOLERANCE);
    }

    /** As above with another absolute tolerance (the router's smaller step makes the loss's rounding larger). */
    static void assertGradient(final String what, final float[] input, final int from, final int to,
        final float[] analytic, final int count, final double eps, final Loss loss, final long seed,
        final double absTolerance) {
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
        assertGradientValues(what, fd, an, idx, absTolerance, FD_REL_TOLERANCE);
    }

    /**
     * Fails unless every {@code |fd[j] - analytic[j]| <= abs + rel * max(|fd[j]|, |analytic[j]|)}; a non-finite value
     * fails (the comparison is written so that NaN cannot pass).
     */
    static void assertGradientValues(final String what, final double[] fd, final double[] analytic, final int[] idx,
        final double abs, final double rel) {
        double worstError = 0;
        for (int j = 0; j < fd.length; j++) {
            final double err = Math.abs(fd[j] - analytic[j]);
            final double tolerance = abs + rel * Math.max(Math.abs(fd[j]), Math.abs(analytic[j]));
            assertTrue(err <= tolerance, what + "[" + idx[j] + "]: finite difference " + fd[j] + " vs analytic "
                + analytic[j] + " (|error| " + err + ", tolerance " + tolerance + ")");
            worstError = Math.max(worstError, err);
        }
        if (Boolean.getBoolean("moeflow.fd.report")) {
            System.out.printf("fd check %-40s %4d coordinates, worst |error| %.2e%n", what, fd.length, worstError);
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
