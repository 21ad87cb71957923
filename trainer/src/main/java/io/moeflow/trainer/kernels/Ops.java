package io.moeflow.trainer.kernels;

/**
 * Every numeric op of the MoE transformer, as sequential kernels over an explicit sub-range. The model splits each op
 * across its worker threads by calling the same kernel on disjoint ranges (rows, columns or attention heads); each
 * kernel computes every output element with an arithmetic order that does not depend on the range it was given, so
 * results are bitwise identical for any thread count.
 * <p>
 * Layouts are row-major. Letters: N rows (tokens), C channels, T sequence length, H heads, E experts, K top-k,
 * V vocabulary, "in"/"out" for a linear layer whose weight is stored PyTorch-style as W[out, in].
 * Two implementations: {@link ReferenceOps} (plain scalar loops, double accumulators: the ground truth) and
 * {@link FastOps} (Vector API, float, fused multiply-add).
 */
public interface Ops {
    /** LayerNorm epsilon, PyTorch's default. */
    float LN_EPS = 1e-5f;
    /** Added to the sum of the selected scores before normalising gates: an underflowed sum cannot divide by 0. */
    float GATE_EPS = 1e-20f;

    // ---------------------------------------------------------------- embeddings

    /** x[n, :] = wte[tokens[n], :] + wpe[n % T, :] for n in [n0, n1). x: [N, C]. */
    void embeddingForward(int[] tokens, float[] p, int wteOff, int wpeOff, float[] x, int seqLen, int channels,
        int n0, int n1);

    /**
     * Overwrites columns [c0, c1) of dwte [V, C] and dwpe [T, C] in {@code g}: dwte[v, c] = sum over n with
     * tokens[n] == v of dx[n, c]; dwpe[t, c] = sum over rows at position t. Rows in ascending order.
     */
    void embeddingBackward(int[] tokens, float[] dx, int rows, float[] g, int wteOff, int wpeOff, int vocab,
        int seqLen, int channels, int c0, int c1);

    // ---------------------------------------------------------------- layer norm

    /** y = (x - mean) * rstd * gamma + beta per row n in [n0, n1); x, y: [N, C]; mean, rstd: [N] at statOff. */
    void layerNormForward(float[] x, int xOff, float[] p, int gammaOff, int betaOff, float[] y, int yOff,
        float[] mean, float[] rstd, int statOff, int channels, int n0, int n1);

    /** dx (= or +=) d/dx of the layer norm for rows [n0, n1), given dy. */
    void layerNormBackwardInput(float[] dy, int dyOff, float[] x, int xOff, float[] p, int gammaOff, float[] mean,
        float[] rstd, int statOff, float[] dx, int dxOff, int channels, int n0, int n1, boolean accumulate);

    /** Overwrites dgamma[c] = sum_n dy * xhat and dbeta[c] = sum_n dy for c in [c0, c1), rows in ascending order. */
    void layerNormBackwardParams(float[] dy, int dyOff, float[] x, int xOff, float[] mean, float[] rstd, int statOff,
        float[] g, int dgammaOff, int dbetaOff, int rows, int channels, int c0, int c1);

    // ---------------------------------------------------------------- linear (y = x W^T + b, W: [out, in])

    /**
     * y[n, o] = b[o] + sum_i x[n, i] W[o, i] for every n in [0, rows) and o in [o0, o1). bOff &lt; 0: no bias.
     * {@code scratch} holds at least (in + 2) * (o1 - o0 + 16) floats (the fast kernel packs W^T and the bias there).
     */
    void linearForward(float[] x, int xOff, float[] w, int wOff, int bOff, float[] y, int yOff, int rows, int in,
        int out, int o0, int o1, float[] scratch);

    /** dx[n, i] (= or +=) sum_o dy[n, o] W[o, i] for rows n in [n0, n1) and all i. */
    void linearBackwardInput(float[] dy, int dyOff, float[] w, int wOff, float[] dx, int dxOff, int in, int out,
        int n0, int n1, boolean accumulate);

    /**
     * Overwrites dW[o, i] = sum_n dy[n, o] x[n, i] and (dbOff >= 0) db[o] = sum_n dy[n, o] for o in [o0, o1), both in
     * {@code g}; rows in ascending order. rows == 0 writes zeros (an expert without tokens).
     */
    void linearBackwardWeight(float[] dy, int dyOff, float[] x, int xOff, float[] g, int dwOff, int dbOff, int rows,
        int in, int out, int o0, int o1);

    // ---------------------------------------------------------------- GELU (exact, erf form, as PyTorch F.gelu)

    /** a[j] = h[j] * Phi(h[j]) for j in [0, count), Phi the standard normal CDF. */
    void geluForward(float[] h, int hOff, float[] a, int aOff, int count);

    /** dh[j] = da[j] * (Phi(h[j]) + h[j] phi(h[j])); dh may alias da. */
    void geluBackward(float[] h, int hOff, float[] da, int daOff, float[] dh, int dhOff, int count);

    // ---------------------------------------------------------------- causal self-attention

    /**
     * For (sequence, head) pairs p = b * H + h in [p0, p1): q, k, v are the head's columns of qkv [B*T, 3C]
     * (q at h*D, k at C + h*D, v at 2C + h*D, D = C / H);
     * probs[p, t, s] = softmax_s(q_t . k_s / sqrt(D)) for s &lt;= t, 0 above the diagonal;
     * out[b*T + t, h*D + d] = sum_s probs[p, t, s] v_s[d]. probs: [B*H, T, T].
     * {@code scratch}: at least 2 * D * T + 2 * T floats.
     */
    void attentionForward(float[] qkv, int qkvOff, float[] out, int outOff, float[] probs, int probsOff, int seqLen,
        int channels, int heads, int p0, int p1, float[] scratch);

    /**
     * Overwrites the head's q, k, v columns of dqkv [B*T, 3C] for pairs [p0, p1), given dout [B*T, C].
     * {@code scratch}: at least T * T + 2 * D * T + 2 * T floats.
     */
    void attentionBackward(float[] dout, int doutOff, float[] qkv, int qkvOff, float[] probs, int probsOff,
        float[] dqkv, int dqkvOff, int seqLen, int channels, int heads, int p0, int p1, float[] scratch);

    // ---------------------------------------------------------------- cross-entropy

    /** In place: logits rows [n0, n1) of [N, V] become probabilities; losses[n] = -log p[n, targets[n]]. */
    void crossEntropyForward(float[] logits, int vocab, int[] targets, float[] losses, int n0, int n1);

    /** In place: probabilities become dlogits = scale * (p - onehot(target)) for rows [n0, n1). */
    void crossEntropyBackward(float[] probs, int vocab, int[] targets, float scale, int n0, int n1);

    // ---------------------------------------------------------------- router (scores, top-k, gates)

    /**
     * For tokens n in [n0, n1): logits[n, e] = x[n, :] . Wr[e, :]; lse[n] = logsumexp(logits[n, :]);
     * scores = softmax or sigmoid of the logits; selected[n, 0..K) = the K experts with the largest score + bias
     * (bias may be null), in descending order, ties to the lower index; gates[n, k] = score of selected[n, k], divided
     * by the sum of the selected scores (+ GATE_EPS) when K &gt; 1. x: [N, C], Wr: [E, C].
     * {@code scratch}: at least (C + 2) * (E + 16) floats.
     */
    void routerForward(float[] x, int xOff, float[] p, int wrOff, float[] bias, int biasOff, boolean sigmoid,
        int channels, int experts, int topK, float[] logits, int logitsOff, float[] scores, int scoresOff, float[] lse,
        int lseOff, int[] selected, int selectedOff, float[] gates, int gatesOff, int n0, int n1, float[] scratch);

    /**
     * dlogits for tokens [n0, n1) from three sources: the gates (dgates [N, K], 0 for dropped slots), the
     * auxiliary loss (dAuxScore[e]: its derivative with respect to each token's normalised score, the same for every
     * token) and the z-loss (zScale = d loss / d lse^2 per token, i.e. coef / N). Normalised scores are the scores
     * for softmax and score / sum(scores) for sigmoid.
     */
    void routerBackward(float[] logits, int logitsOff, float[] scores, int scoresOff, float[] lse, int lseOff,
        int[] selected, int selectedOff, float[] gates, int gatesOff, float[] dgates, int dgatesOff,
        float[] dAuxScore, float zScale, boolean sigmoid, int experts, int topK, float[] dlogits, int dlogitsOff,
        int n0, int n1);

    // ---------------------------------------------------------------- permute / combine (expert dispatch)

    /** dst[r, :] = src[rowIndex[r], :] for r in [r0, r1); rowIndex at indexOff. */
    void gatherRows(float[] src, int srcOff, int[] rowIndex, int indexOff, float[] dst, int dstOff, int channels,
        int r0, int r1);

    /**
     * out[n, :] = residual[n, :] + sum_j weights[n, j] * y[slots[n, j], :] over the J slots of token n whose slot is
     * >= 0 (j in ascending order), for n in [n0, n1). slots, weights: [N, J].
     */
    void combineForward(float[] y, int yOff, int[] slots, int slotsOff, float[] weights, int weightsOff, int slotCount,
        float[] residual, int residualOff, float[] out, int outOff, int channels, int n0, int n1);

    /**
     * For tokens n in [n0, n1) and slots j with slots[n, j] >= 0: dy[slot, :] = weights[n, j] * dout[n, :]; for the
     * first {@code gatedSlots} slots also dgates[n, j] = dout[n, :] . y[slot, :] (0 when dropped).
     */
    void combineBackward(float[] dout, int doutOff, float[] y, int yOff, int[] slots, int slotsOff, float[] weights,
        int weightsOff, int slotCount, int gatedSlots, float[] dy, int dyOff, float[] dgates, int dgatesOff,
        int channels, int n0, int n1);

    /** dx[n, :] (= or +=) sum_j dperm[slots[n, j], :] over slots >= 0 in ascending j, for n in [n0, n1). */
    void scatterBackward(float[] dperm, int dpermOff, int[] slots, int slotsOff, int slotCount, float[] dx, int dxOff,
        int channels, int n0, int n1, boolean accumulate);

    /** y[j] = a[j] + b[j] for j in [0, count). */
    void add(float[] a, int aOff, float[] b, int bOff, float[] y, int yOff, int count);
}
