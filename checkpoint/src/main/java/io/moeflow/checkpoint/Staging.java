package io.moeflow.checkpoint;

import java.lang.reflect.Array;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.zip.CRC32;

/**
 * The writer's copy of every tensor of a layout, allocated once and reused by every save.
 *
 * <p>jHDF takes a dataset's shape from the Java array it is given, so a {@code [3C, C]} tensor is staged as a
 * {@code float[3C][C]}: the staging arrays are what jHDF writes, without another copy. {@link #rows} lists the
 * innermost arrays of each tensor in row-major order, which is how a flat source range is copied in.
 */
final class Staging {
    final CheckpointLayout layout;
    /** Per tensor: the array handed to jHDF ({@code float[]}, {@code float[][]}, ...); a 1-element array for scalars. */
    final Object[] arrays;
    /** Per tensor: its innermost arrays in row-major order. */
    final Object[][] rows;
    /** Per tensor: whether the current save has put it. */
    final boolean[] filled;

    Staging(final CheckpointLayout layout) {
        this.layout = layout;
        final int n = layout.size();
        arrays = new Object[n];
        rows = new Object[n][];
        filled = new boolean[n];
        for (int i = 0; i < n; i++) {
            final TensorSpec t = layout.tensors().get(i);
            final Class<?> element = t.dtype().arrayType().getComponentType();
            if (t.isScalar()) {
                arrays[i] = Array.newInstance(element, 1);
                rows[i] = new Object[] {arrays[i]};
            } else {
                final int[] dims = new int[t.rank()];
                for (int d = 0; d < dims.length; d++) {
                    dims[d] = (int) t.dim(d);
                }
                arrays[i] = Array.newInstance(element, dims);
                final List<Object> leaves = new ArrayList<>(t.elements() / dims[dims.length - 1]);
                collectLeaves(arrays[i], dims.length, leaves);
                rows[i] = leaves.toArray();
            }
        }
    }

    private static void collectLeaves(final Object array, final int rank, final List<Object> out) {
        if (rank == 1) {
            out.add(array);
            return;
        }
        for (final Object child : (Object[]) array) {
            collectLeaves(child, rank - 1, out);
        }
    }

    /** Forgets which tensors were put, for the next save. */
    void reset() {
        java.util.Arrays.fill(filled, false);
    }

    /** Copies {@code spec.elements()} elements of {@code src} from {@code offset} into tensor {@code index}. */
    void copyIn(final int index, final Object src, final int offset) {
        final Object[] tensorRows = rows[index];
        final int rowLength = Array.getLength(tensorRows[0]);
        int from = offset;
        for (final Object row : tensorRows) {
            System.arraycopy(src, from, row, 0, rowLength);
            from += rowLength;
        }
        filled[index] = true;
    }

    /** The value jHDF writes for tensor {@code index}: the staging array, or a boxed value for a scalar. */
    Object datasetValue(final int index) {
        final TensorSpec t = layout.tensors().get(index);
        return t.isScalar() ? Array.get(arrays[index], 0) : arrays[index];
    }

    /** CRC-32 of tensor {@code index}'s little-endian bytes, computed with {@code crc} through {@code scratch}. */
    long crc32(final int index, final CRC32 crc, final ByteBuffer scratch) {
        final DType dtype = layout.tensors().get(index).dtype();
        crc.reset();
        for (final Object row : rows[index]) {
            LittleEndian.update(crc, dtype, row, 0, Array.getLength(row), scratch);
        }
        return crc.getValue();
    }

    /** Names of the tensors not put in the current save (at most {@code limit}). */
    List<String> missing(final int limit) {
        final List<String> out = new ArrayList<>();
        for (int i = 0; i < filled.length && out.size() < limit; i++) {
            if (!filled[i]) {
                out.add(layout.tensors().get(i).toString());
            }
        }
        return out;
    }
}
