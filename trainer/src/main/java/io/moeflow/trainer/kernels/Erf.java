package io.moeflow.trainer.kernels;

/**
 * The error function in double precision, for the reference GELU (Java has no erf). Maclaurin series below |x| = 3
 * (alternating terms, at most ~1e-13 relative error after cancellation) and the Laplace continued fraction of erfc
 * above it (error below 1e-15 with 60 terms for |x| >= 3).
 */
public final class Erf {
    private static final double TWO_OVER_SQRT_PI = 2.0 / Math.sqrt(Math.PI);

    private Erf() {
    }

    /**
     * @param x any value
     * @return erf(x)
     */
    public static double erf(final double x) {
        if (Double.isNaN(x)) {
            return x;
        }
        final double ax = Math.abs(x);
        if (ax < 3.0) {
            // erf(x) = 2/sqrt(pi) * sum_n (-1)^n x^(2n+1) / (n! (2n+1))
            double term = ax;
            double sum = ax;
            final double x2 = ax * ax;
            for (int n = 1; n < 200; n++) {
                term *= -x2 / n;
                final double add = term / (2 * n + 1);
                sum += add;
                if (Math.abs(add) < 1e-17 * Math.abs(sum)) {
                    break;
                }
            }
            return Math.copySign(TWO_OVER_SQRT_PI * sum, x);
        }
        if (ax > 9.0) {
            return Math.copySign(1.0, x);
        }
        // erfc(x) = exp(-x^2)/sqrt(pi) * 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + 2/(x + ...)))))
        double frac = ax;
        for (int n = 60; n >= 1; n--) {
            frac = ax + (n / 2.0) / frac;
        }
        final double erfc = Math.exp(-ax * ax) / Math.sqrt(Math.PI) / frac;
        return Math.copySign(1.0 - erfc, x);
    }
}
