package io.moeflow.optimizer;

/**
 * What {@link AdamW} and {@link AdamWReference} have in common, so the tests can hold both to the same
 * hand-computed values and to each other.
 */
interface AdamWUpdater {

    /** Global L2 norm of the gradients over all segments, before clipping; clips in place. */
    double clipGradNorm(float[] grads);

    /** One full AdamW update of every segment with learning rate {@code lr}. */
    void step(float[] params, float[] grads, double lr);

    /** Number of updates applied so far. */
    long stepCount();

    /** First moment, slab-sized, live. */
    float[] expAvg();

    /** Second moment, slab-sized, live. */
    float[] expAvgSq();
}
