package io.moeflow.transport;

import java.nio.ByteBuffer;

import org.agrona.DirectBuffer;
import org.agrona.UnsafeApi;

/**
 * The reducing receive of the float collectives: adds raw float32 values from a received frame into
 * a {@code float[]} range, one pass, no scratch copy. C2 does not vectorise the plain loop over
 * {@code Unsafe} reads, so where the {@code jdk.incubator.vector} module is present and the frame
 * lies in a direct {@link ByteBuffer} (Aeron's log buffers and the in-process rings do) the lanes
 * are added with the Vector API: about 1.6x the scalar loop on a 64 MiB all-reduce's cold
 * destination, 2x in cache. Both add element by element, so they give the same bits; the scalar
 * loops are the reference (tests compare the two).
 */
final class FrameSums {
    /** Whether the {@code jdk.incubator.vector} module is in this JVM (the launcher and tests add it). */
    static final boolean VECTOR_API_PRESENT = ModuleLayer.boot().findModule("jdk.incubator.vector").isPresent();

    private final boolean useVectorApi;

    FrameSums(final boolean useVectorApi) {
        this.useVectorApi = useVectorApi && VECTOR_API_PRESENT;
    }

    /** True if frames in direct buffers are added with the Vector API. */
    boolean isVectorized() {
        return useVectorApi;
    }

    /** {@code dst[index, index + n) += frame floats at buffer[offset, offset + 4n)}. */
    void sum(final DirectBuffer buffer, final int offset, final float[] dst, final int index, final int n) {
        final ByteBuffer direct = directView(buffer);
        if (direct != null) {
            VectorFrameSums.sum(direct, buffer.wrapAdjustment() + offset, buffer.addressOffset() + offset, dst, index, n);
        } else {
            sumScalar(buffer.byteArray(), buffer.addressOffset() + offset, dst, index, n);
        }
    }

    /** {@code dst[i] = (dst[i] + frame[i]) / divisor}: the last reduction of an average, correctly rounded. */
    void sumDivide(final DirectBuffer buffer, final int offset, final float[] dst, final int index, final int n,
                   final float divisor) {
        final ByteBuffer direct = directView(buffer);
        if (direct != null) {
            VectorFrameSums.sumDivide(direct, buffer.wrapAdjustment() + offset, buffer.addressOffset() + offset, dst, index, n,
                divisor);
        } else {
            sumDivideScalar(buffer.byteArray(), buffer.addressOffset() + offset, dst, index, n, divisor);
        }
    }

    private ByteBuffer directView(final DirectBuffer buffer) {
        if (!useVectorApi) {
            return null;
        }
        final ByteBuffer b = buffer.byteBuffer();
        return b != null && b.isDirect() ? b : null;
    }

    /** Reference: scalar sum from a frame at {@code frameAddress} of {@code frameArray} (null for direct memory). */
    static void sumScalar(final Object frameArray, final long frameAddress, final float[] dst, final int index, final int n) {
        // dst: [n] += frame: [n]; float addition is commutative, so both sides of a pair get the same bits
        for (int i = 0; i < n; i++) {
            dst[index + i] += UnsafeApi.getFloat(frameArray, frameAddress + 4L * i);
        }
    }

    /** Reference: scalar sum then division. */
    static void sumDivideScalar(final Object frameArray, final long frameAddress, final float[] dst, final int index,
                                final int n, final float divisor) {
        for (int i = 0; i < n; i++) {
            dst[index + i] = (dst[index + i] + UnsafeApi.getFloat(frameArray, frameAddress + 4L * i)) / divisor;
        }
    }
}
