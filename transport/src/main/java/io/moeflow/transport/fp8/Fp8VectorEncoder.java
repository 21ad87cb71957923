package io.moeflow.transport.fp8;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * The FP8 encoding arithmetic of {@link Fp8Codec#encode(float)}, lane-parallel with the incubating
 * Vector API: the same bit operations, with blends in place of branches. Only loaded when the
 * {@code jdk.incubator.vector} module is present; tests hold it to the scalar code bit for bit.
 */
final class Fp8VectorEncoder {
    private static final VectorSpecies<Float> FLOATS = FloatVector.SPECIES_PREFERRED;
    private static final VectorSpecies<Integer> INTS = IntVector.SPECIES_PREFERRED;
    static final int LANES = FLOATS.length();

    private final int mantissaDrop;
    private final int roundingBias;
    private final int rebias;
    private final int minNormalBits;
    private final float subnormalScale;
    private final int maxFiniteBits;
    private final int maxFiniteCode;
    private final float roundingMagic;
    private final int roundingMagicBits;

    Fp8VectorEncoder(final int mantissaDrop, final int roundingBias, final int rebias, final int minNormalBits,
                     final float subnormalScale, final int maxFiniteBits, final int maxFiniteCode,
                     final float roundingMagic, final int roundingMagicBits) {
        if (INTS.length() != LANES) {
            throw new IllegalStateException("float and int species differ in lanes");
        }
        this.mantissaDrop = mantissaDrop;
        this.roundingBias = roundingBias;
        this.rebias = rebias;
        this.minNormalBits = minNormalBits;
        this.subnormalScale = subnormalScale;
        this.maxFiniteBits = maxFiniteBits;
        this.maxFiniteCode = maxFiniteCode;
        this.roundingMagic = roundingMagic;
        this.roundingMagicBits = roundingMagicBits;
    }

    /**
     * Codes of {@code values[0, n)} times {@code inverse} into {@code codes[0, n)}; {@code n} a
     * multiple of {@link #LANES}; the values must be finite.
     */
    void encode(final float[] values, final int n, final float inverse, final int[] codes) {
        for (int i = 0; i < n; i += LANES) {
            final IntVector bits = FloatVector.fromArray(FLOATS, values, i).mul(inverse).viewAsIntegralLanes();
            final IntVector sign = bits.lanewise(VectorOperators.LSHR, 24).and(0x80);
            final IntVector abs = bits.and(0x7FFFFFFF);
            // normal range: round the mantissa to the format's width, ties to even, and rebias the exponent
            final IntVector normal = abs.add(roundingBias).add(abs.lanewise(VectorOperators.LSHR, mantissaDrop).and(1))
                .lanewise(VectorOperators.LSHR, mantissaDrop).sub(rebias);
            // subnormal range: the value in units of the smallest subnormal, rounded to even by a float add
            final IntVector subnormal = abs.viewAsFloatingLanes().mul(subnormalScale).add(roundingMagic)
                .viewAsIntegralLanes().sub(roundingMagicBits);
            IntVector code = normal.blend(subnormal, abs.compare(VectorOperators.LT, minNormalBits));
            code = code.blend(maxFiniteCode, abs.compare(VectorOperators.GE, maxFiniteBits));
            code.or(sign).intoArray(codes, i);
        }
    }

    /** Largest magnitude of {@code values[0, n)}, {@code n} a multiple of {@link #LANES} (NaN if any value is NaN). */
    static float maxAbs(final float[] values, final int n) {
        FloatVector max = FloatVector.zero(FLOATS);
        for (int i = 0; i < n; i += LANES) {
            max = max.max(FloatVector.fromArray(FLOATS, values, i).abs());
        }
        return max.reduceLanes(VectorOperators.MAX);
    }

    /**
     * {@code decoded[i] = table[codes[i]] * scale} for {@code i < n} (a gather), then the residual
     * {@code values - decoded} and/or the decoded values themselves where the arrays are given.
     */
    static void decodeBack(final int[] codes, final int n, final float[] table, final float scale, final float[] values,
                           final float[] residual, final int residualOff, final float[] writeBack, final int writeBackOff) {
        for (int i = 0; i < n; i += LANES) {
            final FloatVector decoded = FloatVector.fromArray(FLOATS, table, 0, codes, i).mul(scale);
            if (residual != null) {
                FloatVector.fromArray(FLOATS, values, i).sub(decoded).intoArray(residual, residualOff + i);
            }
            if (writeBack != null) {
                decoded.intoArray(writeBack, writeBackOff + i);
            }
        }
    }
}
