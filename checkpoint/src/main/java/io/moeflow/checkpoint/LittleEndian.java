package io.moeflow.checkpoint;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.zip.CRC32;

/**
 * Moves elements between Java arrays and little-endian byte buffers, and checksums them, for every {@link DType}.
 * The buffers are the caller's (direct, preallocated); nothing here allocates beyond the JDK's small buffer views.
 */
final class LittleEndian {
    private LittleEndian() {
    }

    /** A direct little-endian buffer of {@code capacity} bytes. */
    static ByteBuffer allocate(final int capacity) {
        return ByteBuffer.allocateDirect(capacity).order(ByteOrder.LITTLE_ENDIAN);
    }

    /**
     * Appends {@code count} elements of {@code array} starting at {@code from} to {@code dst} at its position, which
     * advances; {@code dst} must be little-endian with room for them.
     */
    static void put(final DType dtype, final Object array, final int from, final int count, final ByteBuffer dst) {
        switch (dtype) {
            case FLOAT32 -> dst.asFloatBuffer().put((float[]) array, from, count);
            case FLOAT64 -> dst.asDoubleBuffer().put((double[]) array, from, count);
            case INT64 -> dst.asLongBuffer().put((long[]) array, from, count);
            case INT32 -> dst.asIntBuffer().put((int[]) array, from, count);
            default -> throw new IllegalStateException("dtype=" + dtype);
        }
        dst.position(dst.position() + count * dtype.sizeBytes());
    }

    /**
     * Copies {@code count} elements from {@code src} at its position (which advances) into {@code array} starting at
     * {@code from}.
     */
    static void get(final DType dtype, final ByteBuffer src, final Object array, final int from, final int count) {
        switch (dtype) {
            case FLOAT32 -> src.asFloatBuffer().get((float[]) array, from, count);
            case FLOAT64 -> src.asDoubleBuffer().get((double[]) array, from, count);
            case INT64 -> src.asLongBuffer().get((long[]) array, from, count);
            case INT32 -> src.asIntBuffer().get((int[]) array, from, count);
            default -> throw new IllegalStateException("dtype=" + dtype);
        }
        src.position(src.position() + count * dtype.sizeBytes());
    }

    /** Sum of squares of the elements in {@code src} from its position to its limit (position unchanged). */
    static double sumOfSquares(final DType dtype, final ByteBuffer src) {
        double sum = 0;
        for (int i = src.position(); i < src.limit(); i += dtype.sizeBytes()) {
            final double x = element(dtype, src, i);
            sum += x * x;
        }
        return sum;
    }

    /** The element at byte index {@code i} of {@code src}, as a double. */
    private static double element(final DType dtype, final ByteBuffer src, final int i) {
        return switch (dtype) {
            case FLOAT32 -> src.getFloat(i);
            case FLOAT64 -> src.getDouble(i);
            case INT64 -> src.getLong(i);
            case INT32 -> src.getInt(i);
        };
    }

    /**
     * Feeds {@code count} elements of {@code array} from {@code from}, as little-endian bytes, to {@code crc}, going
     * through {@code scratch} (cleared and reused) in pieces.
     */
    static void update(final CRC32 crc, final DType dtype, final Object array, final int from, final int count,
        final ByteBuffer scratch) {
        final int perPiece = scratch.capacity() / dtype.sizeBytes();
        for (int done = 0; done < count; ) {
            final int n = Math.min(perPiece, count - done);
            scratch.clear();
            put(dtype, array, from + done, n, scratch);
            scratch.flip();
            crc.update(scratch);
            done += n;
        }
    }
}
