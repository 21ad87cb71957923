package io.moeflow.trainer.model;

import java.util.Arrays;

/**
 * A named tensor inside the flat parameter slab: {@code slab[offset, offset + length())}, row-major with the given
 * shape ([out, in] for weight matrices, like PyTorch).
 *
 * @param name   PyTorch-style name, e.g. {@code blocks.0.moe.experts.3.w1.weight}
 * @param offset first element in the slab
 * @param shape  dimensions, outermost first
 * @param decay  whether AdamW applies weight decay (2-D weight matrices except embeddings)
 */
public record TensorView(String name, int offset, int[] shape, boolean decay) {
    /**
     * Validates the view.
     */
    public TensorView {
        if (name == null || name.isEmpty()) {
            throw new IllegalArgumentException("name must not be empty");
        }
        if (offset < 0) {
            throw new IllegalArgumentException("offset=" + offset + " must be >= 0 (tensor " + name + ")");
        }
        shape = shape.clone();
        for (final int d : shape) {
            if (d <= 0) {
                throw new IllegalArgumentException("shape=" + Arrays.toString(shape) + " must be positive (tensor " +
                    name + ")");
            }
        }
    }

    /**
     * @return a copy of the shape (records expose their components; the array is defensive-copied)
     */
    @Override
    public int[] shape() {
        return shape.clone();
    }

    /**
     * @return number of elements, the product of the shape
     */
    public int length() {
        int n = 1;
        for (final int d : shape) {
            n *= d;
        }
        return n;
    }

    @Override
    public boolean equals(final Object o) {
        return o instanceof TensorView v && v.name.equals(name) && v.offset == offset &&
            Arrays.equals(v.shape, shape) && v.decay == decay;
    }

    @Override
    public int hashCode() {
        return name.hashCode() * 31 + offset;
    }

    @Override
    public String toString() {
        return name + Arrays.toString(shape) + "@" + offset + (decay ? " decay" : "");
    }
}
