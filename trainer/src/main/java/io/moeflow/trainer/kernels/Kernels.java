package io.moeflow.trainer.kernels;

/**
 * Which kernel implementation a model runs on.
 */
public enum Kernels {
    /** Plain scalar loops with double accumulators: slow, the ground truth for tests. */
    REFERENCE(ReferenceOps.INSTANCE),
    /** Vector API kernels (float, fused multiply-add): the training path. */
    FAST(FastOps.INSTANCE);

    private final Ops ops;

    Kernels(final Ops ops) {
        this.ops = ops;
    }

    /**
     * @return the kernel implementation
     */
    public Ops ops() {
        return ops;
    }
}
