package io.moeflow.trainer.model;

import static io.moeflow.trainer.model.LayerContext.from;
import static io.moeflow.trainer.model.LayerContext.to;

import io.moeflow.trainer.kernels.Ops;
import io.moeflow.trainer.parallel.ParallelGroups;
import io.moeflow.transport.CollectiveHandle;
import io.moeflow.transport.Communicator;
import io.moeflow.transport.ReduceOp;

/**
 * The MoE half of a block: res[l+1] = resMid + sum_j w_j * expert_j(ln2(resMid)).
 * <p>
 * Written as separate stages, so that expert parallelism puts an all-to-all between {@link #permute} and the experts
 * and another between the experts and {@link #combine}:
 * <ol>
 *   <li>{@link #routeScores}: ln2, router logits, scores, top-k, gates (per token);</li>
 *   <li>{@link #assignSlots}: load counting, capacity and dropping, each kept (token, expert) pair gets a row in its
 *       expert's contiguous block of the permuted buffer (sequential, deterministic);</li>
 *   <li>{@link #permute}: gather the tokens into the blocks;</li>
 *   <li>experts: one GEMM pair per expert block (C -> F -> C, GELU between);</li>
 *   <li>{@link #combine}: weighted gather back to token order, plus the residual.</li>
 * </ol>
 * Shared experts are extra blocks E..E+S-1 that receive every token with weight 1.
 * <p>
 * Dropping priority (capacity factor &gt; 0): all first choices before any second choice (GShard), and within one
 * choice rank, earlier tokens of the batch first (Switch's position order). A dropped pair contributes nothing: the
 * token keeps its other experts (gates not renormalised) and the residual.
 * <p>
 * <b>Distributed</b> (a distributed {@link ParallelGroups}, training workspace): {@link #assignSlots} all-gathers every
 * rank's (choice rank, expert) counts, so capacity, priority (job-wide token order = rank order, then position) and the
 * load are exactly those of one process on the global batch. With an expert-parallel degree K &gt; 1 the routed rows
 * then travel to the rank owning their expert (one float all-to-all in the expert group), which regroups them
 * expert-major in the one-process row order and runs one GEMM pair per owned expert; the outputs travel back by a
 * second all-to-all. Backward mirrors it. Shared experts run while the tokens travel. Owned expert gradients are summed
 * over the replica group and scaled to the global mean by {@link #finishExpertGradients}.
 */
final class MoeSublayer {
    /** The rows and buffers one expert stage works on: blocks [first, last), block e from starts[startsOff + e]. */
    private static final class ExpertRows {
        int[] starts;
        int startsOff;
        int first;
        int last;
        float[] x;      // [rows, C] input at xOff
        int xOff;
        float[] h;      // [rows, F] pre-activation at hOff
        float[] a;      // [rows, F] GELU(h) at hOff
        int hOff;
        float[] y;      // [rows, C] output at yOff
        int yOff;
        float[] dy;     // [rows, C] at 0
        float[] dh;     // [rows, F] at 0
        float[] dx;     // [rows, C] at 0

        int start(final int e) {
            return starts[startsOff + e];
        }
    }

    private final LayerContext ctx;
    private final Ops ops;
    private final ModelConfig c;
    private final float[][] expertBias;
    private final ParallelGroups groups;
    private final int[] fill;
    private final int[] seen;
    private final double[] meanScore;
    private final CollectiveHandle[] gradientReductions;
    private final ExpertRows allRows = new ExpertRows();
    private final ExpertRows sharedRows = new ExpertRows();
    private final ExpertRows ownedRows = new ExpertRows();
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
    private final Parallel.Task routerLogitsBackTask = this::routerLogitsBackStage;
    private final Parallel.Task routerWeightBackTask = this::routerWeightBackStage;
    private final Parallel.Task routerInputBackTask = this::routerInputBackStage;
    private final Parallel.Task lnParamsTask = this::lnParamsStage;
    private final Parallel.Task gatherTask = this::gatherStage;

    private Workspace ws;
    private int layer;
    private ParameterLayout.Block b;
    private ExpertRows rows;
    private float[] gatherSrc;
    private int gatherSrcOff;
    private int[] gatherIndex;
    private int gatherIndexOff;
    private float[] gatherDst;
    private int gatherDstOff;
    private int gatherCount;
    private long waitNs;

    MoeSublayer(final LayerContext ctx, final float[][] expertBias) {
        this.ctx = ctx;
        this.ops = ctx.ops;
        this.c = ctx.config;
        this.expertBias = expertBias;
        this.groups = ctx.groups;
        this.fill = new int[c.experts()];
        this.seen = new int[c.topK() * c.experts()];
        this.meanScore = new double[c.experts()];
        this.gradientReductions = new CollectiveHandle[c.layers()];
    }

    // Forward. resMid[l]: [N, C] -> ln2: [N, C] -> scores [N, E], selected/gates [N, K] -> xperm [P, C]
    //          -> h, a: [P, F] -> yperm: [P, C] -> res[l+1] = resMid + sum_j w_j yperm[slot_j]: [N, C]
    // Expert parallel: xperm's routed rows -> all-to-all -> xlocal (expert-major) -> experts -> ylocal
    //          -> all-to-all -> yperm's routed rows; the shared experts run on xperm while the tokens travel.
    void forward(final Workspace w, final int l, final boolean dropless) {
        bind(w, l);
        routeScores();
        assignSlots(dropless);
        permute();
        if (!dispatching()) {
            experts(allRows);
            combine();
            return;
        }
        final int lp = layer * ws.permRows * c.channels();
        final Communicator group = groups.experts().urgent(); // never queued behind gradient buckets
        final CollectiveHandle travel = group.allToAllAsync(ws.xperm, lp, ws.sendCounts[layer], ws.recvStage, 0,
            ws.recvCounts[layer], null);
        if (c.sharedExperts() > 0) {
            experts(sharedRows);
        }
        await(travel);
        gather(ws.recvStage, 0, ws.recvOfLocal, layer * ws.recvCapacity, ws.xlocal,
            layer * ws.recvCapacity * c.channels(), ws.recvRows[layer]);
        experts(ownedRows);
        gather(ws.ylocal, 0, ws.localOfRecv, layer * ws.recvCapacity, ws.sendStage, 0, ws.recvRows[layer]);
        final long t0 = System.nanoTime();
        group.allToAll(ws.sendStage, 0, ws.recvCounts[layer], ws.yperm, lp, ws.sendCounts[layer], null);
        waitNs += System.nanoTime() - t0;
        combine();
    }

    void routeScores() {
        ctx.parallel.run(routeTask);
    }

    void permute() {
        ctx.parallel.run(permuteTask);
    }

    private void experts(final ExpertRows set) {
        rows = set;
        ctx.parallel.run(fc1Task);
        ctx.parallel.run(fc2Task);
    }

    void combine() {
        ctx.parallel.run(combineTask);
    }

    // Backward. dres = dL/dres[l+1]: [N, C] in, dL/dresMid[l] out (in place); writes ln2, router and expert grads.
    // Expert parallel: dyperm's routed rows -> all-to-all -> dylocal -> experts' -> dxlocal -> all-to-all ->
    // dxperm's routed rows; the shared experts' backward runs while dyperm travels, the router's dlogits and dWr
    // while dxperm travels back, and the owned experts' gradients are summed over the replica group meanwhile.
    void backward(final Workspace w, final int l) {
        bind(w, l);
        ctx.parallel.run(combineBackTask);   // dyperm [P, C], dgates [N, K]
        if (!dispatching()) {
            expertsBackward(allRows);        // dW2, db2, dh = (dyperm W2) * gelu'(h); dW1, db1, dxperm = dh W1
            reduceExpertGradients();
            ctx.parallel.run(routerBackTask);    // dln2 = unpermute(dxperm) + dlogits Wr; dres += LN2'(dln2)
            ctx.parallel.run(routerParamsTask);  // dWr, dln2 weight/bias
            return;
        }
        final Communicator group = groups.experts().urgent(); // never queued behind gradient buckets
        final CollectiveHandle out = group.allToAllAsync(ws.dyperm, 0, ws.sendCounts[layer], ws.recvStage, 0,
            ws.recvCounts[layer], null);
        if (c.sharedExperts() > 0) {
            expertsBackward(sharedRows);
        }
        await(out);
        gather(ws.recvStage, 0, ws.recvOfLocal, layer * ws.recvCapacity, ws.dylocal, 0, ws.recvRows[layer]);
        expertsBackward(ownedRows);
        gather(ws.dxlocal, 0, ws.localOfRecv, layer * ws.recvCapacity, ws.sendStage, 0, ws.recvRows[layer]);
        final CollectiveHandle back = group.allToAllAsync(ws.sendStage, 0, ws.recvCounts[layer], ws.dxperm, 0,
            ws.sendCounts[layer], null);
        reduceExpertGradients();
        ctx.parallel.run(routerLogitsBackTask);  // dlogits from gates, aux and z losses
        ctx.parallel.run(routerWeightBackTask);  // dWr = dlogits^T ln2
        await(back);
        ctx.parallel.run(routerInputBackTask);   // dln2 = unpermute(dxperm) + dlogits Wr; dres += LN2'(dln2)
        ctx.parallel.run(lnParamsTask);          // dln2 weight/bias
    }

    private void expertsBackward(final ExpertRows set) {
        rows = set;
        ctx.parallel.run(fc2BackTask);
        ctx.parallel.run(fc1BackTask);
    }

    private boolean distributed() {
        return groups.distributed() && ws.training;
    }

    private boolean dispatching() {
        return distributed() && groups.config().expertParallel() > 1;
    }

    private void await(final CollectiveHandle handle) {
        final long t0 = System.nanoTime();
        handle.await(Parallel.DEFAULT_TIMEOUT_NS);
        waitNs += System.nanoTime() - t0;
    }

    /** Nanoseconds spent in transport calls that block since {@link #resetWait()}. */
    long waitNs() {
        return waitNs;
    }

    void resetWait() {
        waitNs = 0;
    }

    private void gather(final float[] src, final int srcOff, final int[] index, final int indexOff, final float[] dst,
        final int dstOff, final int count) {
        gatherSrc = src;
        gatherSrcOff = srcOff;
        gatherIndex = index;
        gatherIndexOff = indexOff;
        gatherDst = dst;
        gatherDstOff = dstOff;
        gatherCount = count;
        ctx.parallel.run(gatherTask);
    }

    private void gatherStage(final int w, final int workers) {
        ops.gatherRows(gatherSrc, gatherSrcOff, gatherIndex, gatherIndexOff, gatherDst, gatherDstOff, c.channels(),
            from(gatherCount, w, workers, 1), to(gatherCount, w, workers, 1));
    }

    /** First gradient element of this layer's owned routed experts and their count (contiguous in the slab). */
    private int ownedGradientOffset(final int l) {
        return ctx.layout.blocks[l].w1[groups.firstLocalExpert()];
    }

    private int ownedGradientLength(final int l) {
        final ParameterLayout.Block bl = ctx.layout.blocks[l];
        final int last = groups.firstLocalExpert() + groups.expertsPerRank() - 1;
        return bl.b2[last] + c.channels() - bl.w1[groups.firstLocalExpert()];
    }

    // replicas holding the same experts saw different tokens: sum their gradients (async, while backward goes on)
    private void reduceExpertGradients() {
        if (!distributed() || groups.expertReplicas().size() == 1) {
            return;
        }
        gradientReductions[layer] = groups.expertReplicas().allReduceAsync(ctx.grads, ownedGradientOffset(layer),
            ownedGradientLength(layer), ReduceOp.SUM, null);
    }

    /**
     * Waits for the replica sums of the owned experts' gradients and scales them by 1/W: every rank's loss is a mean
     * over its own N tokens, so the sum over the job's ranks is W times the gradient of the global mean (the dense
     * gradients get the same 1/W from their data-parallel average).
     */
    void finishExpertGradients() {
        if (!groups.distributed()) {
            return;
        }
        final float scale = (float) (1.0 / groups.config().worldSize());
        for (int l = 0; l < c.layers(); l++) {
            if (gradientReductions[l] != null) {
                await(gradientReductions[l]);
                gradientReductions[l] = null;
            }
            final int off = ownedGradientOffset(l);
            final int end = off + ownedGradientLength(l);
            for (int i = off; i < end; i++) {
                ctx.grads[i] *= scale;
            }
        }
    }

    private void bind(final Workspace w, final int l) {
        ws = w;
        layer = l;
        b = ctx.layout.blocks[l];
        final int C = c.channels();
        final int F = c.expertHidden();
        final int E = c.experts();
        final int S = c.sharedExperts();
        bindPermuted(allRows, l);
        bindPermuted(sharedRows, l);
        allRows.first = 0;
        allRows.last = E + S;
        sharedRows.first = E;
        sharedRows.last = E + S;
        if (dispatching()) {
            final int R = ws.recvCapacity;
            ownedRows.starts = ws.localStart;
            ownedRows.startsOff = l * (E + 1);
            ownedRows.first = groups.firstLocalExpert();
            ownedRows.last = groups.firstLocalExpert() + groups.expertsPerRank();
            ownedRows.x = ws.xlocal;
            ownedRows.xOff = l * R * C;
            ownedRows.h = ws.hlocal;
            ownedRows.a = ws.alocal;
            ownedRows.hOff = l * R * F;
            ownedRows.y = ws.ylocal;
            ownedRows.yOff = 0;
            ownedRows.dy = ws.dylocal;
            ownedRows.dh = ws.dhlocal;
            ownedRows.dx = ws.dxlocal;
        }
    }

    // the rows of this rank's permuted buffers (every routed and shared block, or a range of them)
    private void bindPermuted(final ExpertRows set, final int l) {
        final int C = c.channels();
        final int F = c.expertHidden();
        set.starts = ws.blockStart;
        set.startsOff = l * (c.experts() + c.sharedExperts() + 1);
        set.x = ws.xperm;
        set.xOff = l * ws.permRows * C;
        set.h = ws.h;
        set.a = ws.a;
        set.hOff = l * ws.permRows * F;
        set.y = ws.yperm;
        set.yOff = l * ws.permRows * C;
        set.dy = ws.dyperm;
        set.dh = ws.dh;
        set.dx = ws.dxperm;
    }

    /**
     * Counts the load, applies the capacity and lays out the permuted blocks; computes the aux and z losses.
     * Sequential on the calling thread: O(N * (K + E)), deterministic by construction. Distributed, the counts of
     * every rank are all-gathered first (one int all-gather of K*E values per rank), and the priority order is the
     * job-wide one: choice rank, then rank, then position, as one process sees the concatenated global batch.
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
        final int W = distributed() ? groups.config().worldSize() : 1;
        final int me = distributed() ? groups.config().rank() : 0;
        final int KE = K * E;
        final int[] counts = ws.routeCounts;

        // this rank's pairs per (choice rank, expert), then everyone's
        java.util.Arrays.fill(counts, me * KE, (me + 1) * KE, 0);
        for (int n = 0; n < N; n++) {
            for (int k = 0; k < K; k++) {
                counts[me * KE + k * E + ws.selected[lnk + n * K + k]]++;
            }
        }
        if (distributed()) {
            final long t0 = System.nanoTime();
            groups.world().urgent().allGather(counts, 0, KE);
            waitNs += System.nanoTime() - t0;
        }
        for (int e = 0; e < E; e++) {
            int load = 0;
            for (int i = e; i < W * KE; i += E) {
                load += counts[i];
            }
            ws.load[le + e] = load;
            fill[e] = 0;
        }
        final long capacity = dropless || c.capacityFactor() == 0.0
            ? Integer.MAX_VALUE
            : (int) Math.ceil((double) K * ((long) N * W) / E * c.capacityFactor());
        // priority: choice rank k first, then the job's token order; the rank inside the block goes into slots for now
        java.util.Arrays.fill(seen, 0);
        int droppedPairs = 0;
        for (int k = 0; k < K; k++) {
            for (int n = 0; n < N; n++) {
                final int e = ws.selected[lnk + n * K + k];
                if (seen[k * E + e]++ < kept(capacity, me, k, e)) {
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
        if (dispatching()) {
            layOutExchange(capacity);
        }
        balanceLosses();
    }

    /**
     * Pairs of world rank {@code rank} with choice rank {@code k} to expert {@code e} that fit the capacity: the ones
     * before them in the job-wide priority order are every pair of a lower choice rank and the same choice rank's
     * pairs of lower ranks.
     */
    private int kept(final long capacity, final int rank, final int k, final int e) {
        final int E = c.experts();
        final int KE = c.topK() * E;
        final int[] counts = ws.routeCounts;
        final int own = counts[rank * KE + k * E + e];
        if (capacity == Integer.MAX_VALUE) {
            return own;
        }
        final int W = distributed() ? groups.config().worldSize() : 1;
        long before = 0;
        for (int j = 0; j < W; j++) {
            for (int kk = 0; kk < k; kk++) {
                before += counts[j * KE + kk * E + e];
            }
        }
        for (int j = 0; j < rank; j++) {
            before += counts[j * KE + k * E + e];
        }
        return (int) Math.max(0, Math.min(own, capacity - before));
    }

    /**
     * From the all-gathered counts, the exchange of this layer: what this rank sends each member of its expert group
     * (the kept rows of that member's experts, contiguous in xperm: expert, then choice rank, then position), what it
     * receives from each, and the owner's expert-major order of the received rows: expert, then choice rank, then
     * member, then position, which is the one-process order of that expert's block, so the expert GEMMs add their
     * weight gradients in the same order.
     */
    private void layOutExchange(final long capacity) {
        final int C = c.channels();
        final int E = c.experts();
        final int K = c.topK();
        final int D = groups.config().expertParallel();
        final int per = groups.expertsPerRank();
        final int first = groups.firstLocalExpert();
        final int base = groups.config().rank() - groups.experts().rank();
        final int bs = layer * (E + c.sharedExperts() + 1);
        final int ls = layer * (E + 1);
        final int lr = layer * ws.recvCapacity;
        final int[] send = ws.sendCounts[layer];
        final int[] recv = ws.recvCounts[layer];
        int total = 0;
        for (int j = 0; j < D; j++) {
            send[j] = (ws.blockStart[bs + (j + 1) * per] - ws.blockStart[bs + j * per]) * C;
            int fromJ = 0;
            for (int e = first; e < first + per; e++) {
                for (int k = 0; k < K; k++) {
                    fromJ += kept(capacity, base + j, k, e);
                }
            }
            recv[j] = fromJ * C;
            total += fromJ;
        }
        if (total > ws.recvCapacity) {
            throw new IllegalStateException("expert-parallel receive of " + total + " rows exceeds the bound " +
                ws.recvCapacity + " (layer " + layer + "): a routing invariant is broken");
        }
        ws.recvRows[layer] = total;
        int row = 0;
        for (int e = 0; e < first; e++) {
            ws.localStart[ls + e] = 0;
        }
        for (int e = first; e < first + per; e++) {
            ws.localStart[ls + e] = row;
            for (int k = 0; k < K; k++) {
                int recvBase = 0;
                for (int j = 0; j < D; j++) {
                    // where (expert e, choice k) starts inside member j's rows to this rank
                    int offset = 0;
                    for (int ee = first; ee < e; ee++) {
                        for (int kk = 0; kk < K; kk++) {
                            offset += kept(capacity, base + j, kk, ee);
                        }
                    }
                    for (int kk = 0; kk < k; kk++) {
                        offset += kept(capacity, base + j, kk, e);
                    }
                    final int n = kept(capacity, base + j, k, e);
                    for (int i = 0; i < n; i++) {
                        final int q = recvBase + offset + i;
                        ws.recvOfLocal[lr + row] = q;
                        ws.localOfRecv[lr + q] = row;
                        row++;
                    }
                    recvBase += recv[j] / C;
                }
            }
        }
        for (int e = first + per; e <= E; e++) {
            ws.localStart[ls + e] = row;
        }
    }

    // aux = coef * E * sum_e f_e P_e, f_e = load_e / (K N), P_e = mean_n normalised score;  z = coef * mean_n lse^2
    private void balanceLosses() {
        final int N = ws.tokens;
        final int E = c.experts();
        final int K = c.topK();
        final int le = layer * E;
        final int lne = layer * N * E;
        final boolean sigmoid = c.routerScore() == RouterScore.SIGMOID;
        final int W = distributed() ? groups.config().worldSize() : 1;
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
                // f from the job-wide load (the same on every rank); d aux / d score per local token: / local N
                final double f = (double) ws.load[le + e] / ((double) K * ((long) N * W));
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
        final int kept = keptRows();
        final int C = c.channels();
        ops.gatherRows(ws.ln2, layer * ws.tokens * C, ws.permToken, layer * ws.permRows, ws.xperm,
            layer * ws.permRows * C, C, from(kept, w, workers, 1), to(kept, w, workers, 1));
    }

    // h = x W1^T + b1, a = gelu(h), one GEMM per expert block of the bound rows, the rows split over the workers
    private void fc1Stage(final int w, final int workers) {
        expertLinearForward(w, workers, rows.x, rows.xOff, c.channels(), b.w1, b.b1, rows.h, rows.hOff,
            c.expertHidden(), true);
    }

    // y = a W2^T + b2 per expert block of the bound rows
    private void fc2Stage(final int w, final int workers) {
        expertLinearForward(w, workers, rows.a, rows.hOff, c.expertHidden(), b.w2, b.b2, rows.y, rows.yOff,
            c.channels(), false);
    }

    /**
     * y = x W_e^T + b_e for this worker's share of the bound rows; with {@code gelu}, also a = gelu(y) for the same
     * rows (into rows.a, which has y's layout). x: [rows, in] at xOff, y: [rows, out] at yOff. The rows of blocks
     * [first, last) are split into one contiguous range per worker (in blocks of 4) and each worker runs the GEMM of
     * every expert block its range touches: a worker packs W_e^T only for those experts (one at the boundary is packed
     * by both), instead of every worker packing every expert for half of its rows. Rows, not output columns, are
     * split: a column split would make both workers write one cache line of every output row. Each output row is one
     * kernel call's work whatever the range, so the bits do not depend on the split.
     */
    private void expertLinearForward(final int w, final int workers, final float[] x, final int xOff, final int in,
        final int[] weights, final int[] biases, final float[] y, final int yOff, final int out, final boolean gelu) {
        final int lo0 = rows.start(rows.first);
        final int total = rows.start(rows.last) - lo0;
        final int r0 = lo0 + from(total, w, workers, 4);
        final int r1 = lo0 + to(total, w, workers, 4);
        for (int e = rows.first; e < rows.last; e++) {
            final int lo = Math.max(r0, rows.start(e));
            final int hi = Math.min(r1, rows.start(e + 1));
            if (lo >= hi) {
                continue;
            }
            ops.linearForward(x, xOff + lo * in, ctx.params, weights[e], biases[e], y, yOff + lo * out, hi - lo, in,
                out, 0, out, ctx.scratch[w]);
            if (gelu) {
                ops.geluForward(y, yOff + lo * out, rows.a, yOff + lo * out, (hi - lo) * out);
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
        // dW2 = dy^T a, db2 = sum dy;  dh = (dy W2) * gelu'(h)
        expertLinearBackward(w, workers, rows.dy, c.channels(), rows.a, rows.hOff, c.expertHidden(), b.w2, b.b2,
            rows.dh, true);
    }

    private void fc1BackStage(final int w, final int workers) {
        // dW1 = dh^T x, db1 = sum dh;  dx = dh W1
        expertLinearBackward(w, workers, rows.dh, c.expertHidden(), rows.x, rows.xOff, c.channels(), b.w1, b.b1,
            rows.dx, false);
    }

    /**
     * Backward of one linear layer of every bound expert block (y = x W_e^T + b_e, dy given): the weight and bias
     * gradients split by output rows of W (every block, so an empty one gets exact zeros), and dx = dy W_e over this
     * worker's share of the rows. dy: [rows, out] at 0, x: [rows, in] at xOff, dx: [rows, in] at 0. With
     * {@code geluPrime}, dx is then multiplied by gelu'(h) block by block, while its rows are still in cache.
     */
    private void expertLinearBackward(final int w, final int workers, final float[] dy, final int out,
        final float[] x, final int xOff, final int in, final int[] weights, final int[] biases, final float[] dx,
        final boolean geluPrime) {
        final int o0 = from(out, w, workers, 16);
        final int o1 = to(out, w, workers, 16);
        for (int e = rows.first; e < rows.last; e++) {
            final int start = rows.start(e);
            ops.linearBackwardWeight(dy, start * out, x, xOff + start * in, ctx.grads, weights[e], biases[e],
                rows.start(e + 1) - start, in, out, o0, o1);
        }
        final int lo0 = rows.start(rows.first);
        final int total = rows.start(rows.last) - lo0;
        final int r0 = lo0 + from(total, w, workers, 1);
        final int r1 = lo0 + to(total, w, workers, 1);
        for (int e = rows.first; e < rows.last; e++) {
            final int start = rows.start(e);
            final int lo = Math.max(r0, start) - start;
            final int hi = Math.min(r1, rows.start(e + 1)) - start;
            if (lo < hi) {
                ops.linearBackwardInput(dy, start * out, ctx.params, weights[e], dx, start * in, in, out, lo, hi,
                    false);
                if (geluPrime) {
                    final int h0 = rows.hOff + (start + lo) * in;
                    ops.geluBackward(rows.h, h0, dx, (start + lo) * in, dx, (start + lo) * in, (hi - lo) * in);
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

    // the router's half of routerBackStage, which needs no expert result: dlogits from gates, aux and z losses
    private void routerLogitsBackStage(final int w, final int workers) {
        final int N = ws.tokens;
        final int E = c.experts();
        final int K = c.topK();
        ops.routerBackward(ws.routerLogits, layer * N * E, ws.scores, layer * N * E, ws.lse, layer * N, ws.selected,
            layer * N * K, ws.gates, layer * N * K, ws.dgates, 0, c.auxLossCoef() > 0 ? auxRow() : null,
            (float) (c.zLossCoef() / N), c.routerScore() == RouterScore.SIGMOID, E, K, ws.dRouterLogits, 0,
            from(N, w, workers, 1), to(N, w, workers, 1));
    }

    // dWr = dlogits^T ln2 (as in routerParamsStage)
    private void routerWeightBackStage(final int w, final int workers) {
        final int N = ws.tokens;
        final int E = c.experts();
        ops.linearBackwardWeight(ws.dRouterLogits, 0, ws.ln2, layer * N * c.channels(), ctx.grads, b.router, -1, N,
            c.channels(), E, from(E, w, workers, 1), to(E, w, workers, 1));
    }

    // the rest of routerBackStage once dxperm is back: the same ops in the same order, so the same bits
    private void routerInputBackStage(final int w, final int workers) {
        final int N = ws.tokens;
        final int C = c.channels();
        final int n0 = from(N, w, workers, 1);
        final int n1 = to(N, w, workers, 1);
        ops.scatterBackward(ws.dxperm, 0, ws.slots, layer * N * ws.slotsPerToken, ws.slotsPerToken, ws.dln, 0, C, n0,
            n1, false);
        ops.linearBackwardInput(ws.dRouterLogits, 0, ctx.params, b.router, ws.dln, 0, C, c.experts(), n0, n1, true);
        ops.layerNormBackwardInput(ws.dln, 0, ws.resMid, layer * N * C, ctx.params, b.ln2Weight, ws.ln2Mean,
            ws.ln2Rstd, layer * N, ws.dres, 0, C, n0, n1, true);
    }

    private void lnParamsStage(final int w, final int workers) {
        final int C = c.channels();
        ops.layerNormBackwardParams(ws.dln, 0, ws.resMid, layer * ws.tokens * C, ws.ln2Mean, ws.ln2Rstd, layer *
            ws.tokens, ctx.grads, b.ln2Weight, b.ln2Bias, ws.tokens, C, from(C, w, workers, 16), to(C, w, workers, 16));
    }
}
