package io.moeflow.trainer.model;

import static io.moeflow.trainer.model.LayerContext.from;
import static io.moeflow.trainer.model.LayerContext.to;

import io.moeflow.trainer.kernels.Ops;

/**
 * The MoE half of a block: res[l+1] = resMid + sum_j w_j * expert_j(ln2(resMid)).
 * <p>
 * Written as separate stages so expert parallelism can later put an all-to-all between {@link #permute} and
 * {@link #experts} and another between {@link #experts} and {@link #combine}:
 * <ol>
 *   <li>{@link #routeScores}: ln2, router logits, scores, top-k, gates (per token);</li>
 *   <li>{@link #assignSlots}: load counting, capacity and dropping, each kept (token, expert) pair gets a row in its
 *       expert's contiguous block of the permuted buffer (sequential, deterministic);</li>
 *   <li>{@link #permute}: gather the tokens into the blocks;</li>
 *   <li>{@link #experts}: one GEMM pair per expert block (C -> F -> C, GELU between);</li>
 *   <li>{@link #combine}: weighted gather back to token order, plus the residual.</li>
 * </ol>
 * Shared experts are extra blocks E..E+S-1 that receive every token with weight 1.
 * <p>
 * Dropping priority (capacity factor &gt; 0): all first choices before any second choice (GShard), and within one
 * choice rank, earlier tokens of the batch first (Switch's position order). A dropped pair contributes nothing: the
 * token keeps its other experts (gates not renormalised) and the residual.
 */
final class MoeSublayer {
    private final LayerContext ctx;
    private final Ops ops;
    private final ModelConfig c;
    private final float[][] expertBias;
    private final int[] fill;
    private final double[] meanScore;
    private final Parallel.Task routeTask = this::routeStage;
    private final Parallel.Task permuteTask = this::permuteStage;
    private final Parallel.Task fc1Task = this::fc1Stage;
    private final Parallel.Task fc2Task = this::fc2Stage;
    private final Parallel.Task combineTask = this::combineStage;
    private final Parallel.Task combineBackTask = this::combineBackStage;
    private final Parallel.Task fc2BackTask = this::fc2BackStage;
    private final Parallel.Task fc1BackTask = this::fc1BackStage;
    private final Parallel.Task routerBackTask = this::routerBackStage;
    private final Parallel.Task routerParamsTask = this::routerParamsStage;

    private Workspace ws;
    private int layer;
    private ParameterLayout.Block b;

    MoeSublayer(final LayerContext ctx, final float[][] expertBias) {
        this.ctx = ctx;
        this.ops = ctx.ops;
        this.c = ctx.config;
        this.expertBias = expertBias;
        this.fill = new int[c.experts()];
        this.meanScore = new double[c.experts()];
    }

    // Forward. resMid[l]: [N, C] -> ln2: [N, C] -> scores [N, E], selected/gates [N, K] -> xperm [P, C]
    //          -> h, a: [P, F] -> yperm: [P, C] -> res[l+1] = resMid + sum_j w_j yperm[slot_j]: [N, C]
    void forward(final Workspace w, final int l, final boolean dropless) {
        bind(w, l);
        routeScores();
        assignSlots(dropless);
        permute();
        experts();
        combine();
    }

    void routeScores() {
        ctx.parallel.run(routeTask);
    }

    void permute() {
        ctx.parallel.run(permuteTask);
    }

    void experts() {
        ctx.parallel.run(fc1Task);
        ctx.parallel.run(fc2Task);
    }

    void combine() {
        ctx.parallel.run(combineTask);
    }

    // Backward. dres = dL/dres[l+1]: [N, C] in, dL/dresMid[l] out (in place); writes ln2, router and expert grads.
    void backward(final Workspace w, final int l) {
        bind(w, l);
        ctx.parallel.run(combineBackTask);   // dyperm [P, C], dgates [N, K]
        ctx.parallel.run(fc2BackTask);       // dW2, db2; dh = (dyperm W2) * gelu'(h): [P, F]
        ctx.parallel.run(fc1BackTask);       // dW1, db1; dxperm = dh W1: [P, C]
        ctx.parallel.run(routerBackTask);    // dln2 = unpermute(dxperm) + dlogits Wr; dres += LN2'(dln2)
        ctx.parallel.run(routerParamsTask);  // dWr, dln2 weight/bias
    }

    private void bind(final Workspace w, final int l) {
        ws = w;
        layer = l;
        b = ctx.layout.blocks[l];
    }

    /**
     * Counts the load, applies the capacity and lays out the permuted blocks; computes the aux and z losses.
     * Sequential on the calling thread: O(N * (K + E)), deterministic by construction.
     */
    void assignSlots(final boolean dropless) {
        final int N = ws.tokens;
        final int E = c.experts();
        final int K = c.topK();
        final int S = c.sharedExperts();
        final int J = ws.slotsPerToken;
        final int lnk = layer * N * K;
        final int lnj = layer * N * J;
        final int lp = layer * ws.permRows;
        final int bs = layer * (E + S + 1);
        final int le = layer * E;

        for (int e = 0; e < E; e++) {
            ws.load[le + e] = 0;
            fill[e] = 0;
        }
        for (int i = 0; i < N * K; i++) {
            ws.load[le + ws.selected[lnk + i]]++;
        }
        final int capacity = dropless || c.capacityFactor() == 0.0
            ? Integer.MAX_VALUE
            : (int) Math.ceil((double) K * N / E * c.capacityFactor());
        // priority: choice rank k first, then token order; the rank inside the block goes into slots for now
        int droppedPairs = 0;
        for (int k = 0; k < K; k++) {
            for (int n = 0; n < N; n++) {
                final int e = ws.selected[lnk + n * K + k];
                if (fill[e] < capacity) {
                    ws.slots[lnj + n * J + k] = fill[e]++;
                } else {
                    ws.slots[lnj + n * J + k] = -1;
                    droppedPairs++;
                }
            }
        }
        ws.dropped[layer] = droppedPairs;
        ws.blockStart[bs] = 0;
        for (int e = 0; e < E; e++) {
            ws.blockStart[bs + e + 1] = ws.blockStart[bs + e] + fill[e];
        }
        for (int s = 0; s < S; s++) {
            ws.blockStart[bs + E + s + 1] = ws.blockStart[bs + E + s] + N;
        }
        for (int n = 0; n < N; n++) {
            for (int k = 0; k < K; k++) {
                final int rank = ws.slots[lnj + n * J + k];
                if (rank >= 0) {
                    final int slot = ws.blockStart[bs + ws.selected[lnk + n * K + k]] + rank;
                    ws.slots[lnj + n * J + k] = slot;
                    ws.slotWeights[lnj + n * J + k] = ws.gates[lnk + n * K + k];
                    ws.permToken[lp + slot] = n;
                } else {
                    ws.slotWeights[lnj + n * J + k] = 0f;
                }
            }
            for (int s = 0; s < S; s++) {
                final int slot = ws.blockStart[bs + E + s] + n;
                ws.slots[lnj + n * J + K + s] = slot;
                ws.slotWeights[lnj + n * J + K + s] = 1f;
                ws.permToken[lp + slot] = n;
            }
        }
        balanceLosses();
    }

    // aux = coef * E * sum_e f_e P_e, f_e = load_e / (K N), P_e = mean_n normalised score;  z = coef * mean_n lse^2
    private void balanceLosses() {
        final int N = ws.tokens;
        final int E = c.experts();
        final int K = c.topK();
        final int le = layer * E;
        final int lne = layer * N * E;
        final boolean sigmoid = c.routerScore() == RouterScore.SIGMOID;
        double aux = 0;
        if (c.auxLossCoef() > 0) {
            // P_e = mean over tokens of the normalised score (token order, one thread: deterministic)
            java.util.Arrays.fill(meanScore, 0.0);
            for (int n = 0; n < N; n++) {
                final int row = lne + n * E;
                double total = 0;
                if (sigmoid) {
                    for (int e = 0; e < E; e++) {
                        total += ws.scores[row + e];
                    }
                }
                for (int e = 0; e < E; e++) {
                    meanScore[e] += sigmoid ? ws.scores[row + e] / total : ws.scores[row + e];
                }
            }
            for (int e = 0; e < E; e++) {
                final double f = (double) ws.load[le + e] / ((double) K * N);
                aux += f * (meanScore[e] / N);
                ws.dAuxRows[layer][e] = (float) (c.auxLossCoef() * E * f / N);
            }
            aux *= c.auxLossCoef() * E;
        }
        ws.aux[layer] = aux;
        double z = 0;
        if (c.zLossCoef() > 0) {
            for (int n = 0; n < N; n++) {
                final double l = ws.lse[layer * N + n];
                z += l * l;
            }
            z *= c.zLossCoef() / N;
        }
        ws.z[layer] = z;
    }

    private int blocks() {
        return c.experts() + c.sharedExperts();
    }

    private int blockStart(final int e) {
        return ws.blockStart[layer * (blocks() + 1) + e];
    }

    private int keptRows() {
        return blockStart(blocks());
    }

    private void routeStage(final int w, final int workers) {
        final int N = ws.tokens;
        final int C = c.channels();
        final int E = c.experts();
        final int K = c.topK();
        final int n0 = from(N, w, workers, 1);
        final int n1 = to(N, w, workers, 1);
        final int nc = layer * N * C;
        ops.layerNormForward(ws.resMid, nc, ctx.params, b.ln2Weight, b.ln2Bias, ws.ln2, nc, ws.ln2Mean, ws.ln2Rstd,
            layer * N, C, n0, n1);
        ops.routerForward(ws.ln2, nc, ctx.params, b.router, c.biasBalancing() ? expertBias[layer] : null, 0,
            c.routerScore() == RouterScore.SIGMOID, C, E, K, ws.routerLogits, layer * N * E, ws.scores, layer * N * E,
            ws.lse, layer * N, ws.selected, layer * N * K, ws.gates, layer * N * K, n0, n1, ctx.scratch[w]);
    }

    private void permuteStage(final int w, final int workers) {
        final int rows = keptRows();
        final int C = c.channels();
        ops.gatherRows(ws.ln2, layer * ws.tokens * C, ws.permToken, layer * ws.permRows, ws.xperm,
            layer * ws.permRows * C, C, from(rows, w, workers, 1), to(rows, w, workers, 1));
    }

    // h = xperm W1^T + b1, a = gelu(h), one GEMM per expert block, its rows split over the workers
    private void fc1Stage(final int w, final int workers) {
        final int C = c.channels();
        final int F = c.expertHidden();
        expertLinearForward(w, workers, ws.xperm, layer * ws.permRows * C, C, b.w1, b.b1, ws.h,
            layer * ws.permRows * F, F, true);
    }

    // yperm = a W2^T + b2 per expert block, its rows split over the workers
    private void fc2Stage(final int w, final int workers) {
        final int C = c.channels();
        final int F = c.expertHidden();
        expertLinearForward(w, workers, ws.a, layer * ws.permRows * F, F, b.w2, b.b2, ws.yperm,
            layer * ws.permRows * C, C, false);
    }

    /**
     * y = x W_e^T + b_e for this worker's share of the permuted rows; with {@code gelu}, also a = gelu(y) for the same
     * rows (into ws.a, which has y's layout). x: [P, in] at xOff, y: [P, out] at yOff. The kept rows are split into
     * one contiguous range per worker (in blocks of 4) and each worker runs the GEMM of every expert block its range
     * touches: a worker packs W_e^T only for those experts (one at the boundary is packed by both), instead of every
     * worker packing every expert for half of its rows. Rows, not output columns, are split: a column split would make
     * both workers write one cache line of every output row. Each output row is one kernel call's work whatever the
     * range, so the bits do not depend on the split.
     */
    private void expertLinearForward(final int w, final int workers, final float[] x, final int xOff, final int in,
        final int[] weights, final int[] biases, final float[] y, final int yOff, final int out, final boolean gelu) {
        final int rows = keptRows();
        final int r0 = from(rows, w, workers, 4);
        final int r1 = to(rows, w, workers, 4);
        for (int e = 0; e < blocks(); e++) {
            final int lo = Math.max(r0, blockStart(e));
            final int hi = Math.min(r1, blockStart(e + 1));
            if (lo >= hi) {
                continue;
            }
            ops.linearForward(x, xOff + lo * in, ctx.params, weights[e], biases[e], y, yOff + lo * out, hi - lo, in,
                out, 0, out, ctx.scratch[w]);
            if (gelu) {
                ops.geluForward(y, yOff + lo * out, ws.a, yOff + lo * out, (hi - lo) * out);
            }
        }
    }

    private void combineStage(final int w, final int workers) {
        final int N = ws.tokens;
        final int C = c.channels();
        final int J = ws.slotsPerToken;
        ops.combineForward(ws.yperm, layer * ws.permRows * C, ws.slots, layer * N * J, ws.slotWeights, layer * N * J,
            J, ws.resMid, layer * N * C, ws.res, (layer + 1) * N * C, C, from(N, w, workers, 1), to(N, w, workers, 1));
    }

    private void combineBackStage(final int w, final int workers) {
        final int N = ws.tokens;
        final int C = c.channels();
        final int J = ws.slotsPerToken;
        ops.combineBackward(ws.dres, 0, ws.yperm, layer * ws.permRows * C, ws.slots, layer * N * J, ws.slotWeights,
            layer * N * J, J, c.topK(), ws.dyperm, 0, ws.dgates, 0, C, from(N, w, workers, 1), to(N, w, workers, 1));
    }

    private void fc2BackStage(final int w, final int workers) {
        final int C = c.channels();
        final int F = c.expertHidden();
        // dW2 = dyperm^T a, db2 = sum dyperm;  dh = (dyperm W2) * gelu'(h)
        expertLinearBackward(w, workers, ws.dyperm, C, ws.a, layer * ws.permRows * F, F, b.w2, b.b2, ws.dh, true);
    }

    private void fc1BackStage(final int w, final int workers) {
        final int C = c.channels();
        final int F = c.expertHidden();
        // dW1 = dh^T xperm, db1 = sum dh;  dxperm = dh W1
        expertLinearBackward(w, workers, ws.dh, F, ws.xperm, layer * ws.permRows * C, C, b.w1, b.b1, ws.dxperm,
            false);
    }

    /**
     * Backward of one linear layer of every expert block (y = x W_e^T + b_e, dy given): the weight and bias
     * gradients split by output rows of W (every block, so an empty one gets exact zeros), and dx = dy W_e over this
     * worker's share of the permuted rows. dy: [P, out] at 0, x: [P, in] at xOff, dx: [P, in] at 0. With
     * {@code geluPrime}, dx is then multiplied by gelu'(h) block by block, while its rows are still in cache.
     */
    private void expertLinearBackward(final int w, final int workers, final float[] dy, final int out,
        final float[] x, final int xOff, final int in, final int[] weights, final int[] biases, final float[] dx,
        final boolean geluPrime) {
        final int o0 = from(out, w, workers, 16);
        final int o1 = to(out, w, workers, 16);
        for (int e = 0; e < blocks(); e++) {
            final int start = blockStart(e);
            ops.linearBackwardWeight(dy, start * out, x, xOff + start * in, ctx.grads, weights[e], biases[e],
                blockStart(e + 1) - start, in, out, o0, o1);
        }
        final int rows = keptRows();
        final int r0 = from(rows, w, workers, 1);
        final int r1 = to(rows, w, workers, 1);
        for (int e = 0; e < blocks(); e++) {
            final int start = blockStart(e);
            final int lo = Math.max(r0, start) - start;
            final int hi = Math.min(r1, blockStart(e + 1)) - start;
            if (lo < hi) {
                ops.linearBackwardInput(dy, start * out, ctx.params, weights[e], dx, start * in, in, out, lo, hi,
                    false);
                if (geluPrime) {
                    final int h0 = layer * ws.permRows * in + (start + lo) * in;
                    ops.geluBackward(ws.h, h0, dx, (start + lo) * in, dx, (start + lo) * in, (hi - lo) * in);
                }
            }
        }
    }

    private void routerBackStage(final int w, final int workers) {
        final int N = ws.tokens;
        final int C = c.channels();
        final int E = c.experts();
        final int K = c.topK();
        final int J = ws.slotsPerToken;
        final int n0 = from(N, w, workers, 1);
        final int n1 = to(N, w, workers, 1);
        // dln2[n] = sum over the token's kept slots of dxperm[slot]
        ops.scatterBackward(ws.dxperm, 0, ws.slots, layer * N * J, J, ws.dln, 0, C, n0, n1, false);
        // router: dlogits from gates, aux and z losses; dln2 += dlogits Wr
        ops.routerBackward(ws.routerLogits, layer * N * E, ws.scores, layer * N * E, ws.lse, layer * N, ws.selected,
            layer * N * K, ws.gates, layer * N * K, ws.dgates, 0, c.auxLossCoef() > 0 ? auxRow() : null,
            (float) (c.zLossCoef() / N), c.routerScore() == RouterScore.SIGMOID, E, K, ws.dRouterLogits, 0, n0, n1);
        ops.linearBackwardInput(ws.dRouterLogits, 0, ctx.params, b.router, ws.dln, 0, C, E, n0, n1, true);
        // dres += LN2'(dln2)
        ops.layerNormBackwardInput(ws.dln, 0, ws.resMid, layer * N * C, ctx.params, b.ln2Weight, ws.ln2Mean,
            ws.ln2Rstd, layer * N, ws.dres, 0, C, n0, n1, true);
    }

    private float[] auxRow() {
        return ws.dAuxRows[layer];
    }

    private void routerParamsStage(final int w, final int workers) {
        final int N = ws.tokens;
        final int C = c.channels();
        final int E = c.experts();
        // dWr = dlogits^T ln2
        ops.linearBackwardWeight(ws.dRouterLogits, 0, ws.ln2, layer * N * C, ctx.grads, b.router, -1, N, C, E,
            from(E, w, workers, 1), to(E, w, workers, 1));
        ops.layerNormBackwardParams(ws.dln, 0, ws.resMid, layer * N * C, ws.ln2Mean, ws.ln2Rstd, layer * N, ctx.grads,
            b.ln2Weight, b.ln2Bias, N, C, from(C, w, workers, 16), to(C, w, workers, 16));
    }
}
