package io.moeflow.transport;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.SplittableRandom;

import org.agrona.BufferUtil;
import org.agrona.concurrent.UnsafeBuffer;
import org.junit.jupiter.api.Test;

/** The Vector API frame sums against the scalar reference loops: same bits, every length and alignment. */
class FrameSumsTest {
    private static final int MAX_FLOATS = 300;

    @Test
    void shouldAddTheSameBitsWithAndWithoutTheVectorApi() {
        final FrameSums vector = new FrameSums(true);
        final FrameSums scalar = new FrameSums(false);
        assertTrue(vector.isVectorized(), "the test JVM has jdk.incubator.vector, so the vector path must be in use");
        // a frame inside a larger direct buffer, as in Aeron's log: offsets that are and are not vector aligned
        final UnsafeBuffer direct = new UnsafeBuffer(BufferUtil.allocateDirectAligned(64 + 4 * MAX_FLOATS + 64, 64), 16,
            4 * MAX_FLOATS + 64);
        final SplittableRandom random = new SplittableRandom(7);
        for (int n = 0; n <= 70; n++) {
            for (final int frameOffset : new int[] {0, 4, 32, 36}) {
                final float[] frame = randomFloats(random, n);
                direct.putFloat(0, 0f);
                for (int i = 0; i < n; i++) {
                    direct.putFloat(frameOffset + 4 * i, frame[i]);
                }
                final int index = random.nextInt(5);
                final float[] base = randomFloats(random, index + n + 3);
                final float[] expected = base.clone();
                final float[] actual = base.clone();
                scalar.sum(direct, frameOffset, expected, index, n);
                vector.sum(direct, frameOffset, actual, index, n);
                assertBitsEqual(expected, actual, "sum n=" + n + " offset=" + frameOffset);
                final float divisor = 1 + random.nextInt(7);
                scalar.sumDivide(direct, frameOffset, expected, index, n, divisor);
                vector.sumDivide(direct, frameOffset, actual, index, n, divisor);
                assertBitsEqual(expected, actual, "sumDivide n=" + n + " offset=" + frameOffset + " divisor=" + divisor);
            }
        }
    }

    @Test
    void shouldAddFramesOfHeapBuffersWithTheScalarLoop() {
        final FrameSums vector = new FrameSums(true);
        final UnsafeBuffer heap = new UnsafeBuffer(new byte[4 * 40]);
        final float[] dst = new float[40];
        final float[] expected = new float[40];
        for (int i = 0; i < 40; i++) {
            heap.putFloat(4 * i, i + 0.5f);
            dst[i] = i;
            expected[i] = i + (i + 0.5f);
        }
        vector.sum(heap, 0, dst, 0, 40);
        assertArrayEquals(expected, dst, 0f);
    }

    private static float[] randomFloats(final SplittableRandom random, final int n) {
        final float[] values = new float[n];
        for (int i = 0; i < n; i++) {
            // mixed magnitudes so that additions round, plus a few special values
            final int kind = random.nextInt(50);
            values[i] = kind == 0 ? Float.NaN : kind == 1 ? -0f : kind == 2 ? Float.MIN_VALUE
                : (float) ((random.nextDouble() - 0.5) * Math.scalb(1.0, random.nextInt(-20, 20)));
        }
        return values;
    }

    private static void assertBitsEqual(final float[] expected, final float[] actual, final String what) {
        for (int i = 0; i < expected.length; i++) {
            if (Float.floatToRawIntBits(expected[i]) != Float.floatToRawIntBits(actual[i])) {
                throw new AssertionError(what + ": element " + i + " is " + actual[i] + ", scalar gives " + expected[i]);
            }
        }
    }
}
