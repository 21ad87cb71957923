package io.moeflow.transport.fp8;

/**
 * The two 8-bit floating-point formats of the OCP FP8 specification.
 *
 * <p>{@link #E4M3} (4 exponent bits, 3 mantissa bits, no infinities) has more precision and suits
 * gradients and activations; {@link #E5M2} (5 exponent bits, 2 mantissa bits) has more range.
 * Both are used here with a shared power-of-two scale per block of {@link Fp8Codec#BLOCK_LENGTH}
 * values, so the format's range only has to cover the spread inside one block.
 */
public enum Fp8Format {
    /** 1 sign, 4 exponent (bias 7), 3 mantissa bits; largest finite value 448; no infinities. */
    E4M3(4, 3, 7, 448.0f, 0x7E, 0x7F),
    /** 1 sign, 5 exponent (bias 15), 2 mantissa bits; largest finite value 57344. */
    E5M2(5, 2, 15, 57344.0f, 0x7B, 0x7F);

    final int exponentBits;
    final int mantissaBits;
    final int bias;
    final float maxFinite;
    final int maxFiniteCode;
    final int nanCode;

    Fp8Format(final int exponentBits, final int mantissaBits, final int bias, final float maxFinite,
              final int maxFiniteCode, final int nanCode) {
        this.exponentBits = exponentBits;
        this.mantissaBits = mantissaBits;
        this.bias = bias;
        this.maxFinite = maxFinite;
        this.maxFiniteCode = maxFiniteCode;
        this.nanCode = nanCode;
    }

    /** The name on command lines and in reports: {@code fp8-e4m3}, {@code fp8-e5m2}. */
    public String cliName() {
        return "fp8-" + name().toLowerCase(java.util.Locale.ROOT);
    }

    /** Largest finite magnitude of the format. */
    public float maxFinite() {
        return maxFinite;
    }

    /** Number of mantissa bits (3 for E4M3, 2 for E5M2). */
    public int mantissaBits() {
        return mantissaBits;
    }

    /**
     * Decodes one code by the definition of the format (no tables); the reference for the codec's
     * lookup table.
     */
    public float decodeByDefinition(final int code) {
        final int c = code & 0xFF;
        final boolean negative = (c & 0x80) != 0;
        final int exponentField = (c >>> mantissaBits) & ((1 << exponentBits) - 1);
        final int mantissaField = c & ((1 << mantissaBits) - 1);
        final int allOnes = (1 << exponentBits) - 1;
        final double value;
        if (this == E4M3 && exponentField == allOnes && mantissaField == (1 << mantissaBits) - 1) {
            return Float.NaN;
        } else if (this == E5M2 && exponentField == allOnes) {
            if (mantissaField != 0) {
                return Float.NaN;
            }
            value = Double.POSITIVE_INFINITY;
        } else if (exponentField == 0) {
            value = mantissaField * Math.pow(2, 1 - bias - mantissaBits);
        } else {
            value = (1.0 + mantissaField / (double) (1 << mantissaBits)) * Math.pow(2, exponentField - bias);
        }
        return (float) (negative ? -value : value);
    }
}
