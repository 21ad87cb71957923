package io.moeflow.trainer.model;

import io.moeflow.trainer.parallel.ParallelGroups;

/**
 * Every activation of one batch shape, allocated once. Per-layer tensors are stacked with a layer stride; the
 * backward buffers hold one layer at a time (they are only allocated for the training workspace).
 * <p>
 * Letters: B sequences, T positions, N = B*T tokens, C channels, H heads, E routed experts, S shared experts,
 * K top-k, J = K + S expert slots per token, P = N*J rows of the permuted (per-expert) buffers, F expert hidden width.
 */
final class Workspace {
    final int batch;
    final int tokens;
    final int slotsPerToken;
    final int permRows;
    final boolean training;

    final int[] inputs;          // [N]
    final int[] targets;         // [N]

    final float[] res;           // [(L+1), N, C] residual stream entering each block, then the final one
    final float[] resMid;        // [L, N, C] after the attention residual
    final float[] ln1;           // [L, N, C]
    final float[] ln1Mean;       // [L, N]
    final float[] ln1Rstd;       // [L, N]
    final float[] qkv;           // [L, N, 3C]
    final float[] probs;         // [L, B*H, T, T]
    final float[] attOut;        // [L, N, C] attention output before the projection
    final float[] projOut;       // [N, C] scratch: projection output
    final float[] ln2;           // [L, N, C]
    final float[] ln2Mean;       // [L, N]
    final float[] ln2Rstd;       // [L, N]

    final float[] routerLogits;  // [L, N, E]
    final float[] scores;        // [L, N, E]
    final float[] lse;           // [L, N] logsumexp of the router logits
    final int[] selected;        // [L, N, K]
    final float[] gates;         // [L, N, K]
    final int[] slots;           // [L, N, J] row in the permuted buffers, -1 when dropped
    final float[] slotWeights;   // [L, N, J] gate (0 when dropped) for routed slots, 1 for shared experts
    final int[] permToken;       // [L, P] token of each permuted row
    final int[] blockStart;      // [L, E+S+1] first permuted row of each expert block
    final int[] load;            // [L, E] tokens routed to each expert before dropping
    final int[] dropped;         // [L]
    final double[] aux;          // [L] auxiliary loss (with coefficient)
    final double[] z;            // [L] z-loss (with coefficient)
    final float[][] dAuxRows;    // [L][E] d aux / d normalised score, the same for every token

    final float[] xperm;         // [L, P, C]
    final float[] h;             // [L, P, F] expert pre-activation
    final float[] a;             // [L, P, F] GELU(h)
    final float[] yperm;         // [L, P, C]

    final float[] lnf;           // [N, C]
    final float[] lnfMean;       // [N]
    final float[] lnfRstd;       // [N]
    final float[] logits;        // [N, V]; probabilities after the cross-entropy forward, dlogits after backward
    final float[] losses;        // [N]

    final float[] dres;          // [N, C]
    final float[] dln;           // [N, C]
    final float[] dqkv;          // [N, 3C]
    final float[] datt;          // [N, C]
    final float[] dxperm;        // [P, C]
    final float[] dh;            // [P, F]
    final float[] dyperm;        // [P, C]
    final float[] dgates;        // [N, K]
    final float[] dRouterLogits; // [N, E]

    // Expert parallelism (empty without it). R = recvCapacity, the most rows an owner can receive for one layer.
    final int[] routeCounts;     // [W, K, E] pairs of every rank per (choice rank, expert), all-gathered per layer
    final int recvCapacity;      // R = K_ep * N * min(k, E/K_ep): every pair of the group's tokens to this rank's experts
    final int[][] sendCounts;    // [L][K_ep] floats this rank sends to each group member (its experts' kept rows * C)
    final int[][] recvCounts;    // [L][K_ep] floats this rank receives from each group member
    final int[] recvRows;        // [L] rows received in total
    final int[] localStart;      // [L, E+1] first row of each expert in the owner's buffers (only owned ones non-empty)
    final int[] recvOfLocal;     // [L, R] received row behind each owner row
    final int[] localOfRecv;     // [L, R] owner row of each received row
    final float[] recvStage;     // [R, C] staging: tokens or output gradients arriving from the group
    final float[] sendStage;     // [R, C] staging: outputs or input gradients going back to the group
    final float[] xlocal;        // [L, R, C] the owner's tokens, expert-major
    final float[] hlocal;        // [L, R, F]
    final float[] alocal;        // [L, R, F]
    final float[] ylocal;        // [R, C]
    final float[] dylocal;       // [R, C]
    final float[] dhlocal;       // [R, F]
    final float[] dxlocal;       // [R, C]

    Workspace(final ModelConfig c, final int batch, final boolean training) {
        this(c, batch, training, ParallelGroups.single(c.experts()));
    }

    /**
     * @param groups the job's communicators: the exchange buffers are allocated only for a training workspace of a
     *               distributed model
     */
    Workspace(final ModelConfig c, final int batch, final boolean training, final ParallelGroups groups) {
        this.batch = batch;
        this.training = training;
        final int L = c.layers();
        final int T = c.seqLen();
        final int C = c.channels();
        final int E = c.experts();
        final int K = c.topK();
        final int F = c.expertHidden();
        final int N = Math.multiplyExact(batch, T);
        tokens = N;
        slotsPerToken = K + c.sharedExperts();
        permRows = Math.multiplyExact(N, slotsPerToken);
        final int P = permRows;

        inputs = new int[N];
        targets = new int[N];
        res = new float[size(L + 1, N, C)];
        resMid = new float[size(L, N, C)];
        ln1 = new float[size(L, N, C)];
        ln1Mean = new float[L * N];
        ln1Rstd = new float[L * N];
        qkv = new float[size(L, N, 3 * C)];
        probs = new float[size(L, batch * c.heads(), (long) T * T)];
        attOut = new float[size(L, N, C)];
        projOut = new float[N * C];
        ln2 = new float[size(L, N, C)];
        ln2Mean = new float[L * N];
        ln2Rstd = new float[L * N];

        routerLogits = new float[size(L, N, E)];
        scores = new float[size(L, N, E)];
        lse = new float[L * N];
        selected = new int[size(L, N, K)];
        gates = new float[size(L, N, K)];
        slots = new int[size(L, N, slotsPerToken)];
        slotWeights = new float[size(L, N, slotsPerToken)];
        permToken = new int[size(L, P, 1)];
        blockStart = new int[L * (E + c.sharedExperts() + 1)];
        load = new int[L * E];
        dropped = new int[L];
        aux = new double[L];
        z = new double[L];
        dAuxRows = new float[L][E];

        xperm = new float[size(L, P, C)];
        h = new float[size(L, P, F)];
        a = new float[size(L, P, F)];
        yperm = new float[size(L, P, C)];

        lnf = new float[N * C];
        lnfMean = new float[N];
        lnfRstd = new float[N];
        logits = new float[size(1, N, c.vocabSize())];
        losses = new float[N];

        final int g = training ? 1 : 0;
        dres = new float[g * N * C];
        dln = new float[g * N * C];
        dqkv = new float[g * N * 3 * C];
        datt = new float[g * N * C];
        dxperm = new float[size(g, P, C)];
        dh = new float[size(g, P, F)];
        dyperm = new float[size(g, P, C)];
        dgates = new float[g * N * K];
        dRouterLogits = new float[g * N * E];

        final boolean distributed = training && groups.distributed();
        final int W = distributed ? groups.config().worldSize() : 0;
        final int D = distributed ? groups.config().expertParallel() : 0;
        final int dispatch = distributed && D > 1 ? 1 : 0;
        routeCounts = new int[size(Math.max(W, 1), K, E)];
        final long capacity = (long) D * N * Math.min(K, distributed ? groups.expertsPerRank() : 0);
        recvCapacity = (int) size(dispatch, capacity, 1);
        final int R = recvCapacity;
        sendCounts = new int[L][D];
        recvCounts = new int[L][D];
        recvRows = new int[L];
        localStart = new int[dispatch * L * (E + 1)];
        recvOfLocal = new int[size(L, R, 1)];
        localOfRecv = new int[size(L, R, 1)];
        recvStage = new float[size(1, R, C)];
        sendStage = new float[size(1, R, C)];
        xlocal = new float[size(L, R, C)];
        hlocal = new float[size(L, R, F)];
        alocal = new float[size(L, R, F)];
        ylocal = new float[size(1, R, C)];
        dylocal = new float[size(1, R, C)];
        dhlocal = new float[size(1, R, F)];
        dxlocal = new float[size(1, R, C)];
    }

    private static int size(final long a, final long b, final long c) {
        final long n = a * b * c;
        if (n > Integer.MAX_VALUE - 16) {
            throw new IllegalArgumentException("activation buffer of " + n + " floats exceeds one Java array: reduce " +
                "batchSize, seqLen or the model size");
        }
        return (int) n;
    }
}
