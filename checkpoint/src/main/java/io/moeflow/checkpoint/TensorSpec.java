package io.moeflow.checkpoint;

import java.util.Arrays;
import java.util.Objects;

/**
 * One named tensor of a checkpoint: which file it goes in, its name, element type and shape.
 *
 * <p>Names are HDF5 paths relative to the file's root: {@code "wte.weight"} or
 * {@code "optimizer/exp_avg/wte.weight"} (a {@code '/'} makes groups). Tensors in {@link CheckpointFile#MODEL} must be
 * float32 and sit at the root (no {@code '/'}), so that {@code {k: f[k][()] for k in f}} in h5py yields every
 * parameter and nothing else.
 *
 * @param file  the file that holds the tensor
 * @param name  the dataset path, segments separated by {@code '/'}, none empty, {@code "."} or {@code ".."}
 * @param dtype the element type
 * @param shape the dimensions, row-major (C order, the last index varies fastest); empty for a scalar; every
 *              dimension {@code >= 1}; the element count must fit in one Java array
 */
public record TensorSpec(CheckpointFile file, String name, DType dtype, long[] shape) {
    /** Largest element count of one tensor: the largest Java array a caller can hand over. */
    public static final long MAX_ELEMENTS = Integer.MAX_VALUE - 8;

    /** HDF5 supports at most 32 dimensions. */
    public static final int MAX_RANK = 32;

    /** Validates every component; the shape is copied, so later changes to the caller's array do not leak in. */
    public TensorSpec {
        Objects.requireNonNull(file, "file");
        Objects.requireNonNull(dtype, "dtype");
        Objects.requireNonNull(shape, "shape");
        checkName(name);
        if (file == CheckpointFile.MODEL && dtype != DType.FLOAT32) {
            throw new IllegalArgumentException("tensor '" + name + "': dtype=" + dtype + " in " + file.fileName()
                + "; model.h5 holds float32 parameters only, put other data in " + CheckpointFile.STATE.fileName());
        }
        if (file == CheckpointFile.MODEL && name.indexOf('/') >= 0) {
            throw new IllegalArgumentException("tensor '" + name + "': model.h5 holds root datasets only (no '/' in "
                + "the name) so that h5py users can load it with {k: f[k][()] for k in f}");
        }
        if (shape.length > MAX_RANK) {
            throw new IllegalArgumentException("tensor '" + name + "': rank=" + shape.length + " exceeds the HDF5 "
                + "limit of " + MAX_RANK);
        }
        shape = shape.clone();
        long elements = 1;
        for (final long dim : shape) {
            if (dim < 1) {
                throw new IllegalArgumentException("tensor '" + name + "': shape=" + Arrays.toString(shape)
                    + " has a dimension < 1; every dimension must be >= 1");
            }
            // elements <= MAX_ELEMENTS and dim <= MAX_ELEMENTS here, so the product cannot overflow a long
            if (dim > MAX_ELEMENTS || (elements *= dim) > MAX_ELEMENTS) {
                throw new IllegalArgumentException("tensor '" + name + "': shape=" + Arrays.toString(shape)
                    + " has more than " + MAX_ELEMENTS + " elements, the largest Java array; split the tensor");
            }
        }
    }

    /** A float32 tensor (parameters, moments). */
    public static TensorSpec float32(final CheckpointFile file, final String name, final long... shape) {
        return new TensorSpec(file, name, DType.FLOAT32, shape);
    }

    /** A float64 tensor; no dimensions makes a scalar. */
    public static TensorSpec float64(final CheckpointFile file, final String name, final long... shape) {
        return new TensorSpec(file, name, DType.FLOAT64, shape);
    }

    /** An int64 tensor; no dimensions makes a scalar. */
    public static TensorSpec int64(final CheckpointFile file, final String name, final long... shape) {
        return new TensorSpec(file, name, DType.INT64, shape);
    }

    /** An int32 tensor; no dimensions makes a scalar. */
    public static TensorSpec int32(final CheckpointFile file, final String name, final long... shape) {
        return new TensorSpec(file, name, DType.INT32, shape);
    }

    /** A copy of the dimensions. */
    @Override
    public long[] shape() {
        return shape.clone();
    }

    /** Number of dimensions; 0 for a scalar. */
    public int rank() {
        return shape.length;
    }

    /** Dimension {@code i}. */
    public long dim(final int i) {
        return shape[i];
    }

    /** Number of elements (1 for a scalar); always {@code <= MAX_ELEMENTS}, so it fits an {@code int}. */
    public int elements() {
        long elements = 1;
        for (final long dim : shape) {
            elements *= dim;
        }
        return (int) elements;
    }

    /** Size of the raw data in bytes. */
    public long sizeBytes() {
        return (long) elements() * dtype.sizeBytes();
    }

    /** Whether this is a rank-0 tensor. */
    public boolean isScalar() {
        return shape.length == 0;
    }

    /** The shape as {@code [3, 4]} ({@code []} for a scalar), the way error messages print it. */
    public String shapeText() {
        return Arrays.toString(shape);
    }

    @Override
    public boolean equals(final Object o) {
        return o instanceof TensorSpec t && file == t.file && dtype == t.dtype && name.equals(t.name)
            && Arrays.equals(shape, t.shape);
    }

    @Override
    public int hashCode() {
        return Objects.hash(file, name, dtype, Arrays.hashCode(shape));
    }

    @Override
    public String toString() {
        return file.fileName() + ":" + name + " " + dtype + shapeText();
    }

    /** Rejects names HDF5 (or our group handling) cannot take, with the reason. */
    static void checkName(final String name) {
        if (name == null || name.isEmpty()) {
            throw new IllegalArgumentException("tensor name=" + (name == null ? "null" : "''")
                + " must be a non-empty string");
        }
        for (final String segment : name.split("/", -1)) {
            if (segment.isEmpty() || segment.equals(".") || segment.equals("..")) {
                throw new IllegalArgumentException("tensor name='" + name + "' has an empty, '.' or '..' path "
                    + "segment; use names like 'wte.weight' or 'optimizer/exp_avg/wte.weight'");
            }
        }
        for (int i = 0; i < name.length(); i++) {
            if (Character.isISOControl(name.charAt(i))) {
                throw new IllegalArgumentException("tensor name='" + name.replaceAll("\\p{Cntrl}", "?")
                    + "' contains a control character at index " + i);
            }
        }
    }
}
