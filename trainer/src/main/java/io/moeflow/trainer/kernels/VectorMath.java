package io.moeflow.trainer.kernels;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;

/**
 * exp and the GELU pieces for the fast kernels, in vector form and in a scalar form that performs exactly the same
 * float operations (same roundings, same fused multiply-adds), so a vector body and its scalar tail agree bit for bit.
 * <p>
 * exp: Cody-Waite range reduction x = n ln2 + r with |r| &lt;= ln2/2, the Cephes degree-6 polynomial for e^r, and
 * 2^n built in the exponent bits; below -87.3 the result is exactly 0, above 88.3 it saturates at e^88.3.
 * Relative error about 2 ulp over the range. erf: Abramowitz-Stegun 7.1.26 (absolute error below 1.5e-7), using
 * the same e^(-x^2) GELU's derivative needs.
 */
public final class VectorMath {
    private static final float LOG2E = 1.44269504088896341f;
    private static final float LN2_HI = 0.693359375f;
    private static final float LN2_LO = -2.12194440e-4f;
    private static final float MAGIC = 12582912f; // 1.5 * 2^23: adding it rounds to an integer
    private static final int MAGIC_BITS = Float.floatToRawIntBits(MAGIC);
    private static final float EXP_LO = -87.3f;
    private static final float EXP_HI = 88.3f;
    private static final float P0 = 1.9875691500e-4f;
    private static final float P1 = 1.3981999507e-3f;
    private static final float P2 = 8.3334519073e-3f;
    private static final float P3 = 4.1665795894e-2f;
    private static final float P4 = 1.6666665459e-1f;
    private static final float P5 = 5.0000001201e-1f;

    private static final float ERF_P = 0.3275911f;
    private static final float A1 = 0.254829592f;
    private static final float A2 = -0.284496736f;
    private static final float A3 = 1.421413741f;
    private static final float A4 = -1.453152027f;
    private static final float A5 = 1.061405429f;
    /** 1 / sqrt(2). */
    public static final float INV_SQRT_2 = 0.70710678118654752f;
    /** 1 / sqrt(2 pi). */
    public static final float INV_SQRT_2PI = 0.39894228040143268f;

    private VectorMath() {
    }

    /**
     * @param x lanes
     * @return e^x per lane
     */
    public static FloatVector exp(final FloatVector x) {
        final FloatVector xc = x.max(EXP_LO).min(EXP_HI);
        final FloatVector t = xc.mul(LOG2E).add(MAGIC);
        final FloatVector n = t.sub(MAGIC);
        FloatVector r = n.fma(FloatVector.broadcast(x.species(), -LN2_HI), xc);
        r = n.fma(FloatVector.broadcast(x.species(), -LN2_LO), r);
        FloatVector p = r.fma(P0, P1);
        p = p.fma(r, FloatVector.broadcast(x.species(), P2));
        p = p.fma(r, FloatVector.broadcast(x.species(), P3));
        p = p.fma(r, FloatVector.broadcast(x.species(), P4));
        p = p.fma(r, FloatVector.broadcast(x.species(), P5));
        p = p.fma(r.mul(r), r).add(1f);
        final IntVector ni = t.reinterpretAsInts().sub(MAGIC_BITS);
        final FloatVector scale = ni.add(127).lanewise(VectorOperators.LSHL, 23).reinterpretAsFloats();
        return p.mul(scale).blend(0f, x.lt(EXP_LO));
    }

    /**
     * The scalar twin of {@link #exp(FloatVector)}: the same operations, the same result bits.
     *
     * @param x argument
     * @return e^x
     */
    public static float exp(final float x) {
        final float xc = Math.min(Math.max(x, EXP_LO), EXP_HI);
        final float t = xc * LOG2E + MAGIC;
        final float n = t - MAGIC;
        float r = Math.fma(n, -LN2_HI, xc);
        r = Math.fma(n, -LN2_LO, r);
        float p = Math.fma(r, P0, P1);
        p = Math.fma(p, r, P2);
        p = Math.fma(p, r, P3);
        p = Math.fma(p, r, P4);
        p = Math.fma(p, r, P5);
        p = Math.fma(p, r * r, r) + 1f;
        final int ni = Float.floatToRawIntBits(t) - MAGIC_BITS;
        final float scale = Float.intBitsToFloat((ni + 127) << 23);
        return x < EXP_LO ? 0f : p * scale;
    }

    /**
     * Standard normal CDF given x and e = exp(-x^2 / 2): Phi(x) = (1 + erf(x / sqrt 2)) / 2.
     *
     * @param x lanes
     * @param e exp(-x * x / 2) of the same lanes
     * @return Phi(x)
     */
    public static FloatVector normalCdf(final FloatVector x, final FloatVector e) {
        final FloatVector ax = x.abs().mul(INV_SQRT_2);
        final FloatVector t = FloatVector.broadcast(x.species(), 1f).div(ax.fma(ERF_P, 1f));
        FloatVector poly = t.fma(A5, A4);
        poly = poly.fma(t, FloatVector.broadcast(x.species(), A3));
        poly = poly.fma(t, FloatVector.broadcast(x.species(), A2));
        poly = poly.fma(t, FloatVector.broadcast(x.species(), A1));
        poly = poly.mul(t);
        final FloatVector erfAbs = poly.mul(e).neg().add(1f);
        final FloatVector erf = erfAbs.blend(erfAbs.neg(), x.lt(0f));
        return erf.add(1f).mul(0.5f);
    }

    /**
     * Scalar twin of {@link #normalCdf(FloatVector, FloatVector)}.
     *
     * @param x argument
     * @param e exp(-x * x / 2)
     * @return Phi(x)
     */
    public static float normalCdf(final float x, final float e) {
        final float ax = Math.abs(x) * INV_SQRT_2;
        final float t = 1f / Math.fma(ax, ERF_P, 1f);
        float poly = Math.fma(t, A5, A4);
        poly = Math.fma(poly, t, A3);
        poly = Math.fma(poly, t, A2);
        poly = Math.fma(poly, t, A1);
        poly = poly * t;
        final float erfAbs = -(poly * e) + 1f;
        final float erf = x < 0f ? -erfAbs : erfAbs;
        return (erf + 1f) * 0.5f;
    }
}
