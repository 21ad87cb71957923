package io.moeflow.transport;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * The lane-parallel loops of {@link FrameSums}; only loaded when the {@code jdk.incubator.vector}
 * module is present. Lane-wise IEEE addition and division, so the bits equal the scalar loops'.
 */
final class VectorFrameSums {
    private static final VectorSpecies<Float> FLOATS = FloatVector.SPECIES_PREFERRED;

    private VectorFrameSums() {
    }

    /**
     * {@code dst[index + i] += frame float i}, the frame starting at byte {@code byteIndex} of {@code frame}
     * (native address {@code tailAddress}, used for the last values that do not fill a vector).
     */
    static void sum(final ByteBuffer frame, final int byteIndex, final long tailAddress, final float[] dst, final int index, final int n) {
        final int lanes = FLOATS.length();
        final int bound = n - n % lanes;
        int i = 0;
        for (; i < bound; i += lanes) {
            final FloatVector received = FloatVector.fromByteBuffer(FLOATS, frame, byteIndex + 4 * i, ByteOrder.LITTLE_ENDIAN);
            FloatVector.fromArray(FLOATS, dst, index + i).add(received).intoArray(dst, index + i);
        }
        FrameSums.sumScalar(null, tailAddress + 4L * i, dst, index + i, n - i);
    }

    /** {@code dst[index + i] = (dst[index + i] + frame float i) / divisor}. */
    static void sumDivide(final ByteBuffer frame, final int byteIndex, final long tailAddress, final float[] dst, final int index, final int n,
                          final float divisor) {
        final int lanes = FLOATS.length();
        final int bound = n - n % lanes;
        int i = 0;
        for (; i < bound; i += lanes) {
            final FloatVector received = FloatVector.fromByteBuffer(FLOATS, frame, byteIndex + 4 * i, ByteOrder.LITTLE_ENDIAN);
            FloatVector.fromArray(FLOATS, dst, index + i).add(received).div(divisor).intoArray(dst, index + i);
        }
        FrameSums.sumDivideScalar(null, tailAddress + 4L * i, dst, index + i, n - i, divisor);
    }
}
