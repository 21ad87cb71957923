package io.moeflow.trainer;

/**
 * What one training step measured. One instance is preallocated by the {@link Trainer} and
 * overwritten every step, so reporting allocates nothing; a {@link StepMonitor} must copy what it
 * wants to keep.
 */
public final class StepMetrics {
    /** Step number, counting from 1 for the first completed step. */
    public long step;
    /** Total loss: cross-entropy + auxiliary balancing loss + router z-loss. */
    public double loss;
    /** Cross-entropy of the next-token prediction alone (nats per token). */
    public double crossEntropy;
    /** Switch/GShard load-balancing loss (already multiplied by its coefficient). */
    public double auxLoss;
    /** Router z-loss (already multiplied by its coefficient). */
    public double zLoss;
    /** Learning rate used by this step's update. */
    public double lr;
    /** Curriculum stage index and name. */
    public int stageIndex;
    public String stageName = "";
    /** Largest sample difficulty the curriculum accepted this step. */
    public double maxDifficulty;
    /** Global L2 norm of the gradients before clipping. */
    public double gradNorm;
    /** Tokens processed per second by this step (wall clock of the whole step); in a job, the global batch's. */
    public double tokensPerSecond;
    /** Wall-clock time of this step in nanoseconds. */
    public long stepTimeNs;
    /** Samples and tokens consumed since the start of training (across resumes). */
    public long samplesConsumed;
    public long tokensConsumed;
    /** Tokens routed to each expert: {@code expertLoad[layer * experts + e]}. */
    public final int[] expertLoad;
    /** Tokens dropped by the capacity limit (0 when dropless). */
    public int droppedTokens;
    /** Mean cross-entropy on held-out samples, measured after this step; NaN on steps without evaluation. */
    public double evalLoss = Double.NaN;
    /**
     * Time the training thread waited for the job's gradient buckets and loss after backward, in
     * nanoseconds: the communication not hidden behind backward (next to nothing in one process).
     */
    public long gradientWaitNs;
    /**
     * Time the MoE layers waited on the transport this step (routing-count all-gathers, token all-to-alls, expert
     * gradient sums), in nanoseconds: the expert-parallel communication not hidden behind compute (0 in one process).
     */
    public long expertWaitNs;
    /** Time the training thread waited for a checkpoint save this step, in nanoseconds (0 without a save). */
    public long checkpointStallNs;
    public final int layers;
    public final int experts;

    public StepMetrics(final int layers, final int experts) {
        this.layers = layers;
        this.experts = experts;
        this.expertLoad = new int[layers * experts];
    }
}
