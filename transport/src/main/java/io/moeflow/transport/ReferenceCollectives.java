package io.moeflow.transport;

/**
 * Plain single-threaded references for the collectives: given every rank's input, the output each
 * rank must hold. The all-reduce references add in exactly the order of the engine's algorithms,
 * so tests can demand the same bits; {@link #exactSum} gives the mathematically exact sum (in double)
 * to check that the order only costs rounding.
 */
public final class ReferenceCollectives {
    private ReferenceCollectives() {
    }

    /**
     * Ring all-reduce: block b of p near-equal blocks is summed as
     * {@code ((x_b + x_{b+1}) + x_{b+2}) + ... + x_{b-1}} (indices mod p); AVERAGE divides the sum by p.
     */
    public static float[] ringAllReduce(final float[][] inputs, final ReduceOp op) {
        return ringReduce(inputs, op, 0);
    }

    /**
     * Ring reduce-scatter over p blocks: block b is summed starting at rank b+1 and ending with rank b;
     * returns the whole reduced buffer (rank r keeps block r).
     */
    public static float[] ringReduceScatter(final float[][] inputs, final ReduceOp op) {
        return ringReduce(inputs, op, -1);
    }

    private static float[] ringReduce(final float[][] inputs, final ReduceOp op, final int shift) {
        final int p = inputs.length;
        final int n = inputs[0].length;
        final float[] out = new float[n];
        for (int b = 0; b < p; b++) {
            final int first = Math.floorMod(b - shift, p);
            for (int i = ScheduleExecutor.blockStart(n, p, b); i < ScheduleExecutor.blockStart(n, p, b + 1); i++) {
                float sum = inputs[first][i];
                for (int k = 1; k < p; k++) {
                    sum = sum + inputs[(first + k) % p][i];
                }
                out[i] = op == ReduceOp.AVERAGE ? sum / p : sum;
            }
        }
        return out;
    }

    /**
     * Recursive-doubling all-reduce: ranks r >= p' (largest power of two <= p) are first added into
     * r - p', then in round k every rank adds the partial sum of rank r XOR 2^k.
     */
    public static float[] recursiveDoublingAllReduce(final float[][] inputs, final ReduceOp op) {
        final int p = inputs.length;
        final int n = inputs[0].length;
        final int pow2 = Integer.highestOneBit(p);
        float[][] partial = new float[pow2][];
        for (int r = 0; r < pow2; r++) {
            partial[r] = inputs[r].clone();
            if (r + pow2 < p) {
                for (int i = 0; i < n; i++) {
                    partial[r][i] = partial[r][i] + inputs[r + pow2][i];
                }
            }
        }
        for (int mask = 1; mask < pow2; mask <<= 1) {
            final float[][] next = new float[pow2][n];
            for (int r = 0; r < pow2; r++) {
                for (int i = 0; i < n; i++) {
                    next[r][i] = partial[r][i] + partial[r ^ mask][i];
                }
            }
            partial = next;
        }
        final float[] out = partial[0];
        if (op == ReduceOp.AVERAGE) {
            for (int i = 0; i < n; i++) {
                out[i] = out[i] / p;
            }
        }
        return out;
    }

    /** The exact element-wise sum (in double) of all inputs. */
    public static double[] exactSum(final float[][] inputs) {
        final double[] out = new double[inputs[0].length];
        for (final float[] input : inputs) {
            for (int i = 0; i < out.length; i++) {
                out[i] += input[i];
            }
        }
        return out;
    }

    /** Broadcast: every rank ends with the root's values ({@code inputs[root]}, copied). */
    public static float[] broadcast(final float[][] inputs, final int root) {
        return inputs[root].clone();
    }

    /** All-gather: block r of the result is block r of rank r's input. */
    public static float[] allGather(final float[][] inputs, final int countPerRank) {
        final float[] out = new float[inputs.length * countPerRank];
        for (int r = 0; r < inputs.length; r++) {
            System.arraycopy(inputs[r], r * countPerRank, out, r * countPerRank, countPerRank);
        }
        return out;
    }

    /**
     * All-to-all: what rank {@code me} receives, given every rank's send buffer and send counts
     * (values from rank j, in rank order).
     */
    public static float[] allToAll(final float[][] sends, final int[][] sendCounts, final int me) {
        int total = 0;
        for (int j = 0; j < sends.length; j++) {
            total += sendCounts[j][me];
        }
        final float[] out = new float[total];
        int at = 0;
        for (int j = 0; j < sends.length; j++) {
            int from = 0;
            for (int k = 0; k < me; k++) {
                from += sendCounts[j][k];
            }
            System.arraycopy(sends[j], from, out, at, sendCounts[j][me]);
            at += sendCounts[j][me];
        }
        return out;
    }
}
