package io.moeflow.trainer.model;

import static io.moeflow.trainer.model.LayerContext.from;
import static io.moeflow.trainer.model.LayerContext.to;

import io.moeflow.optimizer.ParamSegment;
import io.moeflow.trainer.kernels.Kernels;
import io.moeflow.trainer.kernels.Ops;
import io.moeflow.trainer.parallel.ParallelGroups;
import java.util.List;
import java.util.SplittableRandom;

/**
 * A decoder-only Mixture-of-Experts transformer with a hand-written forward and backward pass.
 * <pre>
 *   x = wte[tokens] + wpe                                     [N, C], N = B*T
 *   repeat L times:
 *     x = x + proj(causalSelfAttention(ln1(x)))               (fused qkv, H heads)
 *     x = x + sum_k gate_k * expert_k(ln2(x)) [+ shared(ln2(x))]
 *   logits = lnf(x) head^T                                    [N, V]
 *   loss = crossEntropy + sum_l aux_l + sum_l z_l
 * </pre>
 * Parameters live in one flat {@code float[]} slab ({@link #params()}), gradients in another ({@link #grads()}), with
 * PyTorch names and [out, in] layout ({@link #tensors()}). Every buffer is allocated in the constructor: forward and
 * backward allocate nothing. Work is split over {@link #parallel()} with a static partition in which every output
 * element is computed by one kernel call in an order independent of the split, so losses, gradients and parameters
 * are bitwise identical for any thread count and across runs.
 * <p>
 * Not thread-safe: one thread drives a model.
 */
public final class MoeModel implements AutoCloseable {
    private final ModelConfig config;
    private final int batchSize;
    private final ParallelGroups groups;
    private final ParameterLayout layout;
    private final List<ParamSegment> segments;
    private final float[] params;
    private final float[] grads;
    private final float[][] expertBias;
    private final Parallel parallel;
    private final Ops ops;
    private final LayerContext ctx;
    private final AttentionSublayer attention;
    private final MoeSublayer moe;
    private final Workspace train;
    private final Workspace infer;
    private boolean expertsGathered;

    private final Parallel.Task embedTask = this::embedStage;
    private final Parallel.Task lnfTask = this::lnfStage;
    private final Parallel.Task headTask = this::headStage;
    private final Parallel.Task lossTask = this::lossStage;
    private final Parallel.Task lossBackTask = this::lossBackStage;
    private final Parallel.Task headBackTask = this::headBackStage;
    private final Parallel.Task lnfParamsTask = this::lnfParamsStage;
    private final Parallel.Task embedBackTask = this::embedBackStage;

    private Workspace ws;
    private boolean forwardDone;
    private int nextBackwardBlock = -1;
    private double crossEntropy;
    private double auxLoss;
    private double zLoss;
    private int droppedTokens;

    /**
     * Allocates parameters, gradients, activations for {@code batchSize} sequences and a batch-1 inference workspace,
     * initialises the parameters GPT-2 style and starts the worker threads.
     * <p>
     * Init: weight matrices and embeddings ~ N(0, initStd^2), the residual projections (attn.proj and the experts'
     * w2) scaled by 1/sqrt(2L) so the residual stream's variance does not grow with depth; biases 0, LayerNorm
     * weights 1. The random stream is {@link SplittableRandom}(seed) with Box-Muller, in slab order.
     *
     * @param config    the architecture
     * @param batchSize B, sequences per {@link #forward(int[])}
     * @param threads   worker threads including the caller (2 on a 2-core machine)
     * @param kernels   REFERENCE (plain loops, slow) or FAST (Vector API)
     * @param seed      init seed
     */
    public MoeModel(final ModelConfig config, final int batchSize, final int threads, final Kernels kernels,
        final long seed) {
        this(config, batchSize, threads, kernels, seed, ParallelGroups.single(config == null ? 1 : config.experts()));
    }

    /**
     * A model that is one rank of a distributed job: {@code batchSize} is this rank's share of the global batch and
     * {@code groups} the communicators it exchanges tokens, loads and gradients over ({@link #groups()}). Every rank
     * initialises the whole slab from the same seed, so the replicas start equal without a broadcast.
     * <p>
     * Distributed, {@link #forward(int[])} and {@link #backward()} are collective over the job (every rank calls
     * them, each with its own {@code batchSize} sequences, rank r holding sequences [r*B, (r+1)*B) of the global
     * batch): the routing counts are all-gathered so capacity, dropping, the load and the aux loss are those of one
     * process on the global batch, and with an expert-parallel degree K &gt; 1 the routed tokens travel to the rank
     * owning their expert. Every rank holds the whole slab but only updates what {@link #paramSegments()} lists; the
     * routed experts' gradients are reduced by the model ({@link #reducesExpertGradients()}).
     *
     * @param groups {@link ParallelGroups#single} for one process
     */
    public MoeModel(final ModelConfig config, final int batchSize, final int threads, final Kernels kernels,
        final long seed, final ParallelGroups groups) {
        if (config == null || kernels == null || groups == null) {
            throw new IllegalArgumentException("config=" + config + ", kernels=" + kernels + " and groups=" + groups +
                " must not be null");
        }
        if (batchSize < 1) {
            throw new IllegalArgumentException("batchSize=" + batchSize + " must be >= 1");
        }
        if (threads < 1) {
            throw new IllegalArgumentException("threads=" + threads + " must be >= 1");
        }
        this.config = config;
        this.batchSize = batchSize;
        this.groups = groups;
        this.layout = new ParameterLayout(config);
        if (config.experts() % groups.config().expertParallel() != 0) {
            throw new IllegalArgumentException("expertParallel=" + groups.config().expertParallel() + " must divide " +
                "the expert count " + config.experts() + ": choose --expert-parallel among the divisors of --experts");
        }
        this.expertsGathered = true; // every rank starts from the same init
        this.segments = layout.views.stream()
            .filter(this::ownsTensor)
            .map(v -> new ParamSegment(v.name(), v.offset(), v.length(), v.decay()))
            .toList();
        this.params = new float[layout.size];
        this.grads = new float[layout.size];
        this.expertBias = new float[config.layers()][config.experts()];
        this.ops = kernels.ops();
        this.train = new Workspace(config, batchSize, true, groups);
        this.infer = new Workspace(config, 1, false);
        this.parallel = new Parallel(threads, Parallel.DEFAULT_TIMEOUT_NS, "moeflow-model");
        this.ctx = new LayerContext(config, layout, ops, parallel, params, grads, LayerContext.scratchFloats(config),
            groups);
        this.attention = new AttentionSublayer(ctx);
        this.moe = new MoeSublayer(ctx, expertBias);
        initParameters(seed);
    }

    private void initParameters(final long seed) {
        final SplittableRandom random = new SplittableRandom(seed);
        final double residualStd = config.initStd() / Math.sqrt(2.0 * config.layers());
        for (final TensorView v : layout.views) {
            final String name = v.name();
            if (name.endsWith(".bias")) {
                continue; // zeros
            }
            if (name.startsWith("blocks.") && (name.endsWith("ln1.weight") || name.endsWith("ln2.weight")) ||
                name.equals("lnf.weight")) {
                java.util.Arrays.fill(params, v.offset(), v.offset() + v.length(), 1f);
                continue;
            }
            final double std = name.endsWith("attn.proj.weight") || name.endsWith("w2.weight") ? residualStd :
                config.initStd();
            for (int i = 0; i < v.length(); i += 2) {
                // Box-Muller: two independent normals from two uniforms
                final double u1 = 1.0 - random.nextDouble();
                final double u2 = random.nextDouble();
                final double r = Math.sqrt(-2.0 * Math.log(u1));
                params[v.offset() + i] = (float) (std * r * Math.cos(2 * Math.PI * u2));
                if (i + 1 < v.length()) {
                    params[v.offset() + i + 1] = (float) (std * r * Math.sin(2 * Math.PI * u2));
                }
            }
        }
    }

    /**
     * @return the configuration
     */
    public ModelConfig config() {
        return config;
    }

    /**
     * @return the communicators of this rank's job ({@link ParallelGroups#single} in one process)
     */
    public ParallelGroups groups() {
        return groups;
    }

    /**
     * @return B, the sequences of one {@link #forward(int[])} (this rank's share of the global batch)
     */
    public int batchSize() {
        return batchSize;
    }

    /**
     * @return the parameter slab (live; the optimizer updates it in place)
     */
    public float[] params() {
        return params;
    }

    /**
     * @return the gradient slab (live), fully overwritten by each {@link #backward()}
     */
    public float[] grads() {
        return grads;
    }

    /**
     * @return every parameter tensor, in slab order, with PyTorch names, [out, in] shapes and decay flags
     */
    public List<TensorView> tensors() {
        return layout.views;
    }

    /**
     * @return the tensors this rank updates as AdamW segments (same names, offsets, lengths and decay flags), built
     *         once: every tensor in one process; with expert parallelism the replicated tensors and this rank's own
     *         experts (the other experts' slices of the slab are left alone)
     */
    public List<ParamSegment> paramSegments() {
        return segments;
    }

    /**
     * Whether the MoE layers reduce the routed experts' gradients across the job themselves: distributed, each
     * layer's owned experts are summed over their replica group ({@link ParallelGroups#expertReplicas()}, async,
     * overlapped with the rest of backward) and scaled by 1/W at the end of {@link #backward()}, so they equal the
     * one-process gradient of the global batch. The caller averages only the replicated tensors
     * ({@link #expertOf} &lt; 0) over the job.
     *
     * @return true when distributed
     */
    public boolean reducesExpertGradients() {
        return groups.distributed();
    }

    /**
     * @param v a tensor of {@link #tensors()}
     * @return the routed expert a tensor belongs to ({@code blocks.{l}.moe.experts.{e}.*}), or -1 for a replicated
     *         tensor (embeddings, attention, LayerNorms, router, shared experts, head), which every rank holds
     */
    public static int expertOf(final TensorView v) {
        final String name = v.name();
        final int at = name.indexOf(".moe.experts.");
        if (at < 0) {
            return -1;
        }
        final int from = at + ".moe.experts.".length();
        return Integer.parseInt(name.substring(from, name.indexOf('.', from)));
    }

    /**
     * @param v a tensor of {@link #tensors()}
     * @return whether this rank owns (updates, and is the source of truth for) the tensor: every replicated tensor,
     *         and the routed experts in [{@link #firstOwnedExpert()}, + {@link #ownedExpertCount()})
     */
    public boolean ownsTensor(final TensorView v) {
        final int e = expertOf(v);
        return e < 0 || groups.holdsExpert(e);
    }

    /** @return the first routed expert this rank owns (0 in one process) */
    public int firstOwnedExpert() {
        return groups.firstLocalExpert();
    }

    /** @return routed experts this rank owns per layer (E in one process, E/K with expert parallelism) */
    public int ownedExpertCount() {
        return groups.expertsPerRank();
    }

    /**
     * @param expert a routed expert in [0, E)
     * @return the world ranks owning it: with expert-parallel degree K, ranks r with {@code r % K == expert / (E/K)}
     *         (one per expert-parallel group); every rank with K = 1
     */
    public int[] ownersOfExpert(final int expert) {
        if (expert < 0 || expert >= config.experts()) {
            throw new IllegalArgumentException("expert=" + expert + " must be in [0, " + config.experts() + ")");
        }
        final int k = groups.config().expertParallel();
        final int[] owners = new int[groups.config().expertReplicas()];
        for (int i = 0; i < owners.length; i++) {
            owners[i] = i * k + groups.expertOwner(expert);
        }
        return owners;
    }

    /**
     * Copies every routed expert's parameters from its owner to the other ranks of the expert-parallel group (one
     * all-gather per layer; collective over the job), so that {@link #logits} can run on any rank. A no-op without
     * expert parallelism. Call it after the optimizer step and before generating or evaluating with logits.
     */
    public void gatherExpertParameters() {
        if (!groups.distributed() || groups.config().expertParallel() == 1) {
            return;
        }
        for (int l = 0; l < config.layers(); l++) {
            final ParameterLayout.Block b = layout.blocks[l];
            final int per = (int) (groups.expertsPerRank() * config.expertParameterCount());
            groups.experts().allGather(params, b.w1[0], per, null);
        }
        expertsGathered = true;
    }

    /**
     * The auxiliary-loss-free balancing bias of one layer, named {@code blocks.{l}.moe.router.expert_bias} in
     * checkpoints: a buffer, not a parameter (no gradient). Added to the scores for top-k selection only.
     *
     * @param layer block index
     * @return the live [E] buffer
     */
    public float[] expertBias(final int layer) {
        return expertBias[layer];
    }

    /**
     * @param layer block index
     * @return the checkpoint name of {@link #expertBias(int)}: {@code blocks.{layer}.moe.router.expert_bias}
     */
    public static String expertBiasName(final int layer) {
        return "blocks." + layer + ".moe.router.expert_bias";
    }

    /**
     * @return the worker pool, reusable by the trainer between steps (e.g. for a parallel optimizer update)
     */
    public Parallel parallel() {
        return parallel;
    }

    /**
     * Runs the forward pass on one batch and returns the total loss.
     *
     * @param tokens B rows of T+1 token ids: row b is {@code tokens[b*(T+1) .. (b+1)*(T+1))}; positions 0..T-1 are
     *               the inputs and positions 1..T the targets
     * @return cross-entropy (mean over B*T tokens) + aux loss + z-loss, summed over layers
     */
    public double forward(final int[] tokens) {
        final int T = config.seqLen();
        if (tokens == null || tokens.length != batchSize * (T + 1)) {
            throw new IllegalArgumentException("tokens.length=" + (tokens == null ? "null" : tokens.length) +
                " must be batchSize*(seqLen+1)=" + batchSize * (T + 1));
        }
        for (int i = 0; i < tokens.length; i++) {
            if (tokens[i] < 0 || tokens[i] >= config.vocabSize()) {
                throw new IllegalArgumentException("tokens[" + i + "]=" + tokens[i] + " (sequence " + i / (T + 1) +
                    ", position " + i % (T + 1) + ") is outside the vocabulary [0, " + config.vocabSize() + ")");
            }
        }
        for (int b = 0; b < batchSize; b++) {
            System.arraycopy(tokens, b * (T + 1), train.inputs, b * T, T);
            System.arraycopy(tokens, b * (T + 1) + 1, train.targets, b * T, T);
        }
        moe.resetWait();
        forwardLogits(train, false);
        parallel.run(lossTask);
        double ce = 0;
        for (int n = 0; n < train.tokens; n++) {
            ce += train.losses[n];
        }
        crossEntropy = ce / train.tokens;
        auxLoss = 0;
        zLoss = 0;
        droppedTokens = 0;
        for (int l = 0; l < config.layers(); l++) {
            auxLoss += train.aux[l];
            zLoss += train.z[l];
            droppedTokens += train.dropped[l];
        }
        forwardDone = true;
        return crossEntropy + auxLoss + zLoss;
    }

    // embed -> L x (attention, MoE) -> lnf -> head: logits [N, V]
    private void forwardLogits(final Workspace w, final boolean dropless) {
        ws = w;
        parallel.run(embedTask);
        for (int l = 0; l < config.layers(); l++) {
            attention.forward(w, l);
            moe.forward(w, l, dropless);
        }
        parallel.run(lnfTask);
        parallel.run(headTask);
    }

    /**
     * Backpropagates the last {@link #forward(int[])} and overwrites every element of {@link #grads()}.
     */
    public void backward() {
        backwardHead();
        for (int l = config.layers() - 1; l >= 0; l--) {
            backwardBlock(l);
        }
        backwardEmbedding();
    }

    /**
     * The first part of {@link #backward()}, for a caller that reduces gradients while backward goes on: the loss, the
     * head and the final LayerNorm. The slab is laid out in forward order and backward runs in reverse, so the
     * gradients that are final after each part are a suffix of the slab.
     *
     * @return the first slab offset whose gradient is final now (those of lnf and head)
     */
    public int backwardHead() {
        if (!forwardDone) {
            throw new IllegalStateException("backward needs a forward(tokens) first");
        }
        ws = train;
        parallel.run(lossBackTask);
        parallel.run(headBackTask);
        parallel.run(lnfParamsTask);
        nextBackwardBlock = config.layers() - 1;
        return layout.lnfWeight;
    }

    /**
     * Backward of block {@code l} (MoE, then attention); call for l = L-1 down to 0 after {@link #backwardHead()}.
     *
     * @return the first slab offset whose gradient is final now (block l's first tensor)
     */
    public int backwardBlock(final int l) {
        if (!forwardDone || l != nextBackwardBlock) {
            throw new IllegalStateException("backwardBlock(" + l + ") out of order: expected block " + nextBackwardBlock
                + " (backwardHead, then blocks L-1 down to 0, then backwardEmbedding)");
        }
        moe.backward(train, l);
        attention.backward(train, l);
        nextBackwardBlock--;
        return layout.blocks[l].ln1Weight;
    }

    /**
     * The last part of {@link #backward()}: the embeddings. Every gradient is final afterwards.
     *
     * @return 0, the first slab offset
     */
    public int backwardEmbedding() {
        if (!forwardDone || nextBackwardBlock != -1) {
            throw new IllegalStateException("backwardEmbedding() needs backwardHead() and every backwardBlock first");
        }
        parallel.run(embedBackTask);
        moe.finishExpertGradients();
        forwardDone = false;
        expertsGathered = !groups.distributed() || groups.config().expertParallel() == 1;
        return 0;
    }

    /**
     * @return nanoseconds the MoE layers spent waiting on the transport in the last forward and backward (the
     *         routing-count all-gathers, the token all-to-alls, the replica sums of expert gradients): the
     *         expert-parallel communication not hidden behind compute; 0 in one process
     */
    public long expertWaitNs() {
        return moe.waitNs();
    }

    /**
     * @return mean cross-entropy of the last forward
     */
    public double crossEntropy() {
        return crossEntropy;
    }

    /**
     * @return auxiliary load-balancing loss of the last forward, with its coefficient, summed over layers
     */
    public double auxLoss() {
        return auxLoss;
    }

    /**
     * @return router z-loss of the last forward, with its coefficient, summed over layers
     */
    public double zLoss() {
        return zLoss;
    }

    /**
     * @return live [L*E] array: (token, expert) pairs routed to each expert in the last forward, before dropping;
     *         job-wide (the same on every rank) when distributed
     */
    public int[] expertLoad() {
        return train.load;
    }

    /**
     * @return (token, expert) pairs dropped by the capacity limit in the last forward, summed over layers; this
     *         rank's tokens only when distributed (sum over ranks for the job's figure)
     */
    public int droppedTokens() {
        return droppedTokens;
    }

    /**
     * @return live [B*T] array: the cross-entropy of each position in the last forward
     */
    public float[] tokenLosses() {
        return train.losses;
    }

    /**
     * DeepSeek-V3 auxiliary-loss-free balancing: after a step, bias_e += gamma * sign(mean_load - load_e) from the
     * last forward's load (before dropping). No-op when {@code biasBalancing} is off.
     */
    public void updateBalancingBias() {
        if (!config.biasBalancing()) {
            return;
        }
        final int E = config.experts();
        // the load is job-wide when distributed (every rank computes the same bias, no reduction needed)
        final long tokens = (long) train.tokens * groups.config().worldSize();
        final double meanLoad = (double) config.topK() * tokens / E;
        for (int l = 0; l < config.layers(); l++) {
            for (int e = 0; e < E; e++) {
                expertBias[l][e] += (float) (config.biasUpdateRate() * Math.signum(meanLoad - train.load[l * E + e]));
            }
        }
    }

    /**
     * Next-token logits after {@code context[0..length)}, computed on a separate batch-1 workspace (the training
     * batch's activations and statistics are untouched). Positions after {@code length} are padded with token 0;
     * causal attention keeps them from influencing the result. Routing is dropless here.
     *
     * @param context token ids
     * @param length  tokens of context to use, 1..T
     * @param out     receives V logits
     */
    public void logits(final int[] context, final int length, final float[] out) {
        final int T = config.seqLen();
        final int V = config.vocabSize();
        if (length < 1 || length > T || context.length < length) {
            throw new IllegalArgumentException("length=" + length + " must be in [1, seqLen=" + T +
                "] and <= context.length=" + context.length);
        }
        if (out.length < V) {
            throw new IllegalArgumentException("out.length=" + out.length + " must be >= vocabSize=" + V);
        }
        if (!expertsGathered) {
            throw new IllegalStateException("logits() on an expert-parallel rank needs every expert's current " +
                "parameters: call gatherExpertParameters() on every rank after the optimizer step");
        }
        for (int t = 0; t < T; t++) {
            final int tok = t < length ? context[t] : 0;
            if (tok < 0 || tok >= V) {
                throw new IllegalArgumentException("context[" + t + "]=" + tok + " is outside [0, " + V + ")");
            }
            infer.inputs[t] = tok;
        }
        final Workspace saved = ws;
        forwardLogits(infer, true);
        ws = saved;
        System.arraycopy(infer.logits, (length - 1) * V, out, 0, V);
    }

    /**
     * Stops the worker threads.
     */
    @Override
    public void close() {
        parallel.close();
    }

    // ------------------------------------------------------------------ stages

    private void embedStage(final int w, final int workers) {
        ops.embeddingForward(ws.inputs, params, layout.wte, layout.wpe, ws.res, config.seqLen(), config.channels(),
            from(ws.tokens, w, workers, 1), to(ws.tokens, w, workers, 1));
    }

    private void lnfStage(final int w, final int workers) {
        final int C = config.channels();
        ops.layerNormForward(ws.res, config.layers() * ws.tokens * C, params, layout.lnfWeight, layout.lnfBias, ws.lnf,
            0, ws.lnfMean, ws.lnfRstd, 0, C, from(ws.tokens, w, workers, 1), to(ws.tokens, w, workers, 1));
    }

    private void headStage(final int w, final int workers) {
        final int V = config.vocabSize();
        final int C = config.channels();
        final int n0 = from(ws.tokens, w, workers, 4);
        final int n1 = to(ws.tokens, w, workers, 4);
        if (n0 < n1) {
            ops.linearForward(ws.lnf, n0 * C, params, layout.head, -1, ws.logits, n0 * V, n1 - n0, C, V, 0, V,
                ctx.scratch[w]);
        }
    }

    private void lossStage(final int w, final int workers) {
        ops.crossEntropyForward(ws.logits, config.vocabSize(), ws.targets, ws.losses, from(ws.tokens, w, workers, 1),
            to(ws.tokens, w, workers, 1));
    }

    private void lossBackStage(final int w, final int workers) {
        ops.crossEntropyBackward(ws.logits, config.vocabSize(), ws.targets, 1f / ws.tokens,
            from(ws.tokens, w, workers, 1), to(ws.tokens, w, workers, 1));
    }

    private void headBackStage(final int w, final int workers) {
        final int C = config.channels();
        final int V = config.vocabSize();
        final int N = ws.tokens;
        // dHead = dlogits^T lnf   (rows of head)
        ops.linearBackwardWeight(ws.logits, 0, ws.lnf, 0, grads, layout.head, -1, N, C, V, from(V, w, workers, 16),
            to(V, w, workers, 16));
        // dlnf = dlogits head;  dres = LNf'(dlnf)   (token rows)
        final int n0 = from(N, w, workers, 1);
        final int n1 = to(N, w, workers, 1);
        ops.linearBackwardInput(ws.logits, 0, params, layout.head, ws.dln, 0, C, V, n0, n1, false);
        ops.layerNormBackwardInput(ws.dln, 0, ws.res, config.layers() * N * C, params, layout.lnfWeight, ws.lnfMean,
            ws.lnfRstd, 0, ws.dres, 0, C, n0, n1, false);
    }

    private void lnfParamsStage(final int w, final int workers) {
        final int C = config.channels();
        ops.layerNormBackwardParams(ws.dln, 0, ws.res, config.layers() * ws.tokens * C, ws.lnfMean, ws.lnfRstd, 0,
            grads, layout.lnfWeight, layout.lnfBias, ws.tokens, C, from(C, w, workers, 16), to(C, w, workers, 16));
    }

    private void embedBackStage(final int w, final int workers) {
        final int C = config.channels();
        ops.embeddingBackward(ws.inputs, ws.dres, ws.tokens, grads, layout.wte, layout.wpe, config.vocabSize(),
            config.seqLen(), C, from(C, w, workers, 16), to(C, w, workers, 16));
    }

    // ------------------------------------------------------------------ test hooks (package-private)

    /** Selected experts [L, N, K] and kept slots [L, N, J] of the last training forward, for gradient checks. */
    int[] routingSelected() {
        return train.selected;
    }

    int[] routingSlots() {
        return train.slots;
    }

    /** Gate weights [L, N, K] of the last training forward. */
    float[] routingGates() {
        return train.gates;
    }
}
