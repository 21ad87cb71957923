package io.moeflow.transport.fp8;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.SplittableRandom;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/** The fast codec against the definition of the formats and the brute-force reference. */
class Fp8CodecTest {

    @Test
    void shouldDecodeTheSpecificationsLandmarks() {
        final Fp8Codec e4m3 = new Fp8Codec(Fp8Format.E4M3);
        assertEquals(448f, e4m3.decode(0x7E));
        assertEquals(-448f, e4m3.decode(0xFE));
        assertEquals(1f, e4m3.decode(0x38));
        assertEquals(0x1p-6f, e4m3.decode(0x08), "smallest normal");
        assertEquals(0x1p-9f, e4m3.decode(0x01), "smallest subnormal");
        assertTrue(Float.isNaN(e4m3.decode(0x7F)));
        final Fp8Codec e5m2 = new Fp8Codec(Fp8Format.E5M2);
        assertEquals(57344f, e5m2.decode(0x7B));
        assertEquals(1f, e5m2.decode(0x3C));
        assertEquals(0x1p-16f, e5m2.decode(0x01));
        assertEquals(Float.POSITIVE_INFINITY, e5m2.decode(0x7C));
        assertTrue(Float.isNaN(e5m2.decode(0x7F)));
    }

    @ParameterizedTest
    @EnumSource(Fp8Format.class)
    void shouldEncodeLikeTheNearestEvenReference(final Fp8Format format) {
        final Fp8Codec codec = new Fp8Codec(format);
        int checked = 0;
        // every finite code, the midpoints between neighbours (ties) and one float ulp around them
        for (int code = 0; code < format.maxFiniteCode; code++) {
            final float lo = format.decodeByDefinition(code);
            final float hi = format.decodeByDefinition(code + 1);
            final float mid = (lo + hi) / 2;
            for (final float x : new float[] {lo, hi, mid, Math.nextUp(mid), Math.nextDown(mid)}) {
                assertEquals(Fp8Reference.encode(format, x), codec.encode(x), "x=" + x);
                assertEquals(Fp8Reference.encode(format, -x), codec.encode(-x), "x=" + -x);
                checked += 2;
            }
        }
        final SplittableRandom random = new SplittableRandom(1);
        for (int i = 0; i < 20_000; i++) {
            final float x = (float) ((random.nextDouble() * 2 - 1) * format.maxFinite() * Math.pow(2, -random.nextInt(24)) * 1.2);
            assertEquals(Fp8Reference.encode(format, x), codec.encode(x), "x=" + x);
            checked++;
        }
        assertEquals(format.maxFiniteCode, codec.encode(format.maxFinite() * 4), "saturates");
        assertEquals(format.nanCode, codec.encode(Float.NaN));
        assertEquals(0x80, codec.encode(-0.0f), "keeps the sign of zero");
        assertTrue(checked > 20_000);
    }

    @ParameterizedTest
    @EnumSource(Fp8Format.class)
    void shouldPickTheSmallestPowerOfTwoScale(final Fp8Format format) {
        final Fp8Codec codec = new Fp8Codec(format);
        final SplittableRandom random = new SplittableRandom(2);
        for (int i = 0; i < 5_000; i++) {
            final float maxAbs = Float.intBitsToFloat(random.nextInt(0x7F7FFFFF) + 1);
            assertEquals(Fp8Reference.scaleExponent(format, maxAbs), codec.scaleExponent(maxAbs), "maxAbs=" + maxAbs);
        }
        for (final float edge : new float[] {format.maxFinite(), Math.nextUp(format.maxFinite()), 1f, Float.MIN_VALUE,
            Float.MIN_NORMAL, Float.MAX_VALUE, format.maxFinite() * 0x1p-120f}) {
            assertEquals(Fp8Reference.scaleExponent(format, edge), codec.scaleExponent(edge), "maxAbs=" + edge);
        }
    }

    @ParameterizedTest
    @EnumSource(Fp8Format.class)
    void shouldRoundTripBlocksLikeTheReferenceWithinHalfAStep(final Fp8Format format) {
        final Fp8Codec codec = new Fp8Codec(format);
        final SplittableRandom random = new SplittableRandom(3);
        final int n = 1000; // 31 full blocks and a partial one
        final float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = (float) ((random.nextDouble() - 0.5) * Math.pow(10, random.nextInt(9) - 4));
        }
        x[5] = 0;
        final byte[] encoded = new byte[Fp8Codec.encodedLength(n)];
        codec.encode(x, 0, n, null, 0, false, encoded, 0);
        final float[] decoded = new float[n];
        codec.decode(encoded, 0, n, decoded, 0);
        assertArrayEquals(Fp8Reference.roundTrip(format, x), decoded);
        for (int i = 0; i < n; i++) {
            final int k = (encoded[i / Fp8Codec.BLOCK_LENGTH] & 0xFF) - 127;
            // half a step of the format at |x|, or half the smallest subnormal step, in units of the block scale
            final double bound = Math.max(Math.abs(x[i]) * Math.pow(2, -format.mantissaBits() - 1),
                Math.pow(2, k) * decodedSmallestSubnormal(format) / 2);
            assertTrue(Math.abs(decoded[i] - x[i]) <= bound, "i=" + i + " x=" + x[i] + " got " + decoded[i]);
        }
        // decoded values re-encode to themselves: a ring may forward what it received without new error
        final byte[] again = new byte[encoded.length];
        codec.encode(decoded, 0, n, null, 0, false, again, 0);
        final float[] twice = new float[n];
        codec.decode(again, 0, n, twice, 0);
        assertArrayEquals(decoded, twice);
    }

    private static double decodedSmallestSubnormal(final Fp8Format format) {
        return format.decodeByDefinition(1);
    }

    @Test
    void shouldCarryWhatQuantizationLostInTheResidual() {
        final Fp8Codec codec = new Fp8Codec(Fp8Format.E4M3);
        final float[] x = {0.1f, 0.2f, 0.3f, -1.7f, 3.3f};
        final float[] residual = {0.01f, 0f, 0f, 0f, -0.02f};
        final float[] values = new float[x.length];
        for (int i = 0; i < x.length; i++) {
            values[i] = x[i] + residual[i];
        }
        final float[] written = x.clone();
        final byte[] out = new byte[Fp8Codec.encodedLength(x.length)];
        codec.encode(written, 0, x.length, residual, 0, true, out, 0);
        final float[] decoded = new float[x.length];
        codec.decode(out, 0, x.length, decoded, 0);
        assertArrayEquals(decoded, written, "write-back holds what receivers decode");
        for (int i = 0; i < x.length; i++) {
            assertEquals(values[i] - decoded[i], residual[i], "residual " + i);
        }
    }

    @Test
    void shouldTurnABlockWithInfinityIntoNanAndForgetItsResidual() {
        final Fp8Codec codec = new Fp8Codec(Fp8Format.E5M2);
        final float[] x = new float[40];
        x[3] = Float.POSITIVE_INFINITY;
        x[35] = 2f;
        final float[] residual = new float[40];
        residual[4] = 0.5f;
        final byte[] out = new byte[Fp8Codec.encodedLength(40)];
        codec.encode(x, 0, 40, residual, 0, false, out, 0);
        final float[] decoded = new float[40];
        codec.decode(out, 0, 40, decoded, 0);
        for (int i = 0; i < 32; i++) {
            assertTrue(Float.isNaN(decoded[i]), "first block is NaN at " + i);
        }
        assertEquals(2f, decoded[35]);
        assertEquals(0f, residual[4]);
    }

    @ParameterizedTest
    @EnumSource(Fp8Format.class)
    void shouldEncodeTheSameBitsWithAndWithoutTheVectorApi(final Fp8Format format) {
        final Fp8Codec vector = new Fp8Codec(format, true);
        final Fp8Codec scalar = new Fp8Codec(format, false);
        assertTrue(vector.isVectorized(), "the test JVM has jdk.incubator.vector, so the vector path must be in use");
        final SplittableRandom random = new SplittableRandom(4);
        final int n = 4099; // full blocks and a partial one
        final float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = (float) (random.nextGaussian() * Math.pow(2, random.nextInt(40) - 20));
        }
        x[7] = 0x1p-140f; // far below the block's scale: the subnormal path
        x[40] = -0.0f;
        x[100] = Float.NaN; // a NaN block
        final float[] residualVector = new float[n];
        final float[] residualScalar = new float[n];
        for (int round = 0; round < 3; round++) {
            final float[] a = x.clone();
            final float[] b = x.clone();
            final byte[] outVector = new byte[Fp8Codec.encodedLength(n)];
            final byte[] outScalar = new byte[Fp8Codec.encodedLength(n)];
            vector.encode(a, 0, n, residualVector, 0, true, outVector, 0);
            scalar.encode(b, 0, n, residualScalar, 0, true, outScalar, 0);
            assertArrayEquals(outScalar, outVector, "codes of round " + round);
            assertArrayEquals(b, a, "written-back values of round " + round);
            assertArrayEquals(residualScalar, residualVector, "residuals of round " + round);
        }
    }
}
