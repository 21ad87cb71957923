package io.moeflow.transport.fp8;

/**
 * Plain reference for {@link Fp8Codec}: nearest-value search over every code and a scale found by
 * counting powers of two. Slow and obvious on purpose; tests hold the codec to it bit for bit.
 */
public final class Fp8Reference {
    private Fp8Reference() {
    }

    /**
     * The code whose value is nearest to {@code x} (ties: the even code); saturates to the largest
     * finite value; NaN gives the NaN code.
     */
    public static int encode(final Fp8Format format, final float x) {
        if (Float.isNaN(x)) {
            return format.nanCode | (Float.floatToRawIntBits(x) < 0 ? 0x80 : 0);
        }
        final int sign = (Float.floatToRawIntBits(x) & 0x80000000) != 0 ? 0x80 : 0;
        final double a = Math.abs((double) x);
        if (a >= format.maxFinite) {
            return sign | format.maxFiniteCode;
        }
        int best = 0;
        double bestDistance = Double.MAX_VALUE;
        for (int code = 0; code <= format.maxFiniteCode; code++) {
            final double distance = Math.abs(format.decodeByDefinition(code) - a);
            if (distance < bestDistance || (distance == bestDistance && (code & 1) == 0)) {
                best = code;
                bestDistance = distance;
            }
        }
        return sign | best;
    }

    /** Smallest {@code k} in [-127, 127] with {@code maxAbs <= maxFinite * 2^k} (0 for an all-zero block). */
    public static int scaleExponent(final Fp8Format format, final float maxAbs) {
        if (maxAbs == 0.0f) {
            return 0;
        }
        int k = -127;
        while (k < 127 && maxAbs > format.maxFinite * Math.pow(2, k)) {
            k++;
        }
        return k;
    }

    /** Encodes then decodes one block of values: what a receiver sees. */
    public static float[] roundTrip(final Fp8Format format, final float[] values) {
        final float[] out = new float[values.length];
        for (int start = 0; start < values.length; start += Fp8Codec.BLOCK_LENGTH) {
            final int end = Math.min(values.length, start + Fp8Codec.BLOCK_LENGTH);
            float maxAbs = 0;
            boolean finite = true;
            for (int i = start; i < end; i++) {
                finite &= Float.isFinite(values[i]);
                maxAbs = Math.max(maxAbs, Math.abs(values[i]));
            }
            final int k = scaleExponent(format, maxAbs);
            for (int i = start; i < end; i++) {
                out[i] = finite
                    ? (float) (format.decodeByDefinition(encode(format, (float) (values[i] / Math.pow(2, k)))) * Math.pow(2, k))
                    : Float.NaN;
            }
        }
        return out;
    }
}
