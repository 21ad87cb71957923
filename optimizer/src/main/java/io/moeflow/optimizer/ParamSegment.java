package io.moeflow.optimizer;

/**
 * A named range {@code params[offset, offset + length)} of the flat parameter slab, for example one
 * weight matrix or one bias vector of the model.
 *
 * <p>The optimizer never sees tensors, only these ranges: the same offsets index the parameters,
 * the gradients and the optimizer moments ({@link AdamW#expAvg()}, {@link AdamW#expAvgSq()}).
 *
 * @param name   a unique name within one optimizer, e.g. {@code "blocks.0.attn.qkv.weight"}; it names
 *               the segment in error messages and lets checkpoints slice the moments by tensor
 * @param offset first element of the segment in the slab, {@code >= 0}
 * @param length number of elements, {@code >= 0}
 * @param decay  whether AdamW applies weight decay to this segment; the trainer flags weight
 *               matrices and leaves biases, norm gains and embeddings undecayed unless configured
 */
public record ParamSegment(String name, int offset, int length, boolean decay) {

    /** Validates the range; {@code offset + length} must fit in an {@code int} (a Java array index). */
    public ParamSegment {
        if (name == null || name.isBlank()) {
            throw new IllegalArgumentException("ParamSegment name=" + (name == null ? "null" : "'" + name + "'")
                    + " must be a non-blank string");
        }
        if (offset < 0) {
            throw new IllegalArgumentException("ParamSegment " + name + ": offset=" + offset + " must be >= 0");
        }
        if (length < 0) {
            throw new IllegalArgumentException("ParamSegment " + name + ": length=" + length + " must be >= 0");
        }
        if ((long) offset + length > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("ParamSegment " + name + ": offset=" + offset + " + length=" + length
                    + " exceeds the largest Java array (" + Integer.MAX_VALUE + " elements)");
        }
    }

    /** One past the last element: {@code offset + length}. */
    public int end() {
        return offset + length;
    }
}
