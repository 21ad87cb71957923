package io.moeflow.checkpoint;

/**
 * Element type of a stored tensor. Every type is stored little-endian, as HDF5 {@code H5T_IEEE_F32LE},
 * {@code H5T_IEEE_F64LE}, {@code H5T_STD_I64LE} or {@code H5T_STD_I32LE}; the Java array type that holds it in memory
 * is {@code float[]}, {@code double[]}, {@code long[]} or {@code int[]}.
 */
public enum DType {
    /** 32-bit IEEE float: parameters and optimizer moments. */
    FLOAT32(4, float[].class, "float32"),
    /** 64-bit IEEE float: schedule positions, running averages, MoE balancing biases kept in double. */
    FLOAT64(8, double[].class, "float64"),
    /** Signed 64-bit integer: steps, counters, RNG states. */
    INT64(8, long[].class, "int64"),
    /** Signed 32-bit integer: indices and small counters. */
    INT32(4, int[].class, "int32");

    private final int sizeBytes;
    private final Class<?> arrayType;
    private final String label;

    DType(final int sizeBytes, final Class<?> arrayType, final String label) {
        this.sizeBytes = sizeBytes;
        this.arrayType = arrayType;
        this.label = label;
    }

    /** Bytes per element in the file and in memory. */
    public int sizeBytes() {
        return sizeBytes;
    }

    /** The Java array class that holds elements of this type, e.g. {@code float[].class}. */
    public Class<?> arrayType() {
        return arrayType;
    }

    /** Lower-case name as numpy spells it ({@code float32}, {@code int64}, ...). */
    public String label() {
        return label;
    }

    @Override
    public String toString() {
        return label;
    }
}
