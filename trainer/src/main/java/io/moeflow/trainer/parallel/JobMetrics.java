package io.moeflow.trainer.parallel;

import io.moeflow.transport.Communicator;

/**
 * The job-wide loss of a step, from every rank's share: one all-gather (on the urgent lane) of each
 * rank's per-token cross-entropies and its aux loss, z-loss, dropped pairs and stop request (so a
 * stop asked of any rank, e.g. by a signal that reaches the ranks at different steps, stops every
 * rank after the same step).
 *
 * <p>The cross-entropy is summed over the gathered per-token losses in global token order, exactly as
 * the one-process model sums its batch, so it has the same bits as the one-process run whenever the
 * per-token losses do. Each rank's aux and z losses are means over its own tokens; the job's are their
 * mean over the ranks (equal shards), sent as three floats that hold the double exactly. Allocates
 * nothing per step.
 */
public final class JobMetrics {
    private static final int AUX = 0;
    private static final int Z = 3;
    private static final int DROPPED = 6;
    private static final int STOP = 7;
    private static final int EXTRA = 8;

    private final Communicator world;
    private final int localTokens;
    private final int block;
    private final float[] gathered;
    private double crossEntropy;
    private double auxLoss;
    private double zLoss;
    private int droppedTokens;
    private boolean stopRequested;

    /**
     * @param world       the job (null in one process: the values pass through)
     * @param localTokens tokens of this rank's shard (B/W * T)
     */
    public JobMetrics(final Communicator world, final int localTokens) {
        this.world = world;
        this.localTokens = localTokens;
        this.block = localTokens + EXTRA;
        this.gathered = world == null ? new float[0] : new float[world.size() * block];
    }

    /**
     * Combines this rank's share with every other rank's (collective in a distributed job).
     *
     * @param tokenLosses [localTokens] this rank's per-token cross-entropy
     * @param crossEntropy this rank's mean cross-entropy (used as is in one process)
     * @param stop         whether this rank was asked to stop (a signal reaches ranks at different steps)
     */
    public void reduce(final float[] tokenLosses, final double crossEntropy, final double aux, final double z,
                       final int dropped, final boolean stop) {
        if (world == null) {
            this.crossEntropy = crossEntropy;
            this.auxLoss = aux;
            this.zLoss = z;
            this.droppedTokens = dropped;
            this.stopRequested = stop;
            return;
        }
        final int mine = world.rank() * block;
        System.arraycopy(tokenLosses, 0, gathered, mine, localTokens);
        split(aux, gathered, mine + localTokens + AUX);
        split(z, gathered, mine + localTokens + Z);
        gathered[mine + localTokens + DROPPED] = dropped;
        gathered[mine + localTokens + STOP] = stop ? 1f : 0f;
        world.urgent().allGather(gathered, 0, block, null);
        final int ranks = world.size();
        double ce = 0;
        double auxSum = 0;
        double zSum = 0;
        int droppedSum = 0;
        boolean anyStop = false;
        for (int r = 0; r < ranks; r++) {
            final int at = r * block;
            for (int n = 0; n < localTokens; n++) {
                ce += gathered[at + n];
            }
            auxSum += join(gathered, at + localTokens + AUX);
            zSum += join(gathered, at + localTokens + Z);
            droppedSum += (int) gathered[at + localTokens + DROPPED];
            anyStop |= gathered[at + localTokens + STOP] != 0f;
        }
        this.crossEntropy = ce / ((long) localTokens * ranks);
        this.auxLoss = auxSum / ranks;
        this.zLoss = zSum / ranks;
        this.droppedTokens = droppedSum;
        this.stopRequested = anyStop;
    }

    /** Whether any rank was asked to stop by this step: every rank gets the same answer, so all stop after it. */
    public boolean stopRequested() {
        return stopRequested;
    }

    /** Mean cross-entropy over the global batch. */
    public double crossEntropy() {
        return crossEntropy;
    }

    /** The job's aux loss (mean of the ranks'). */
    public double auxLoss() {
        return auxLoss;
    }

    /** The job's z-loss (mean of the ranks'). */
    public double zLoss() {
        return zLoss;
    }

    /** The total loss the gradients are of: cross-entropy + aux + z. */
    public double loss() {
        return crossEntropy + auxLoss + zLoss;
    }

    /** Pairs dropped by the capacity limit on every rank together. */
    public int droppedTokens() {
        return droppedTokens;
    }

    // d = hi + mid + lo exactly (three floats carry 72 significant bits; a double has 53)
    static void split(final double d, final float[] out, final int at) {
        final float hi = (float) d;
        final double rest = d - hi;
        final float mid = (float) rest;
        out[at] = hi;
        out[at + 1] = mid;
        out[at + 2] = (float) (rest - mid);
    }

    static double join(final float[] in, final int at) {
        return (double) in[at] + in[at + 1] + in[at + 2];
    }
}
