package io.moeflow.trainer.kernels;

import static io.moeflow.trainer.kernels.OpsFixtures.assertGradient;
import static io.moeflow.trainer.kernels.OpsFixtures.dot;
import static io.moeflow.trainer.kernels.OpsFixtures.random;
import static io.moeflow.trainer.kernels.OpsFixtures.randomInts;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * Finite-difference checks of every op's backward, for both kernel sets: for an op y = f(x) and a fixed random r,
 * the loss sum(r * y) (in double) is differentiated numerically and compared with the backward kernel fed dy = r.
 * Step sizes are ~1e-2 on O(1) inputs: float rounding of the loss stays well below the tolerance, which is per
 * coordinate (see {@link OpsFixtures#FD_ABS_TOLERANCE}). Linear, layerNorm and attention check every coordinate or
 * hundreds of them: a bug confined to a few small entries must land in the sample to be caught.
 */
class OpsGradientTest {
    @ParameterizedTest
    @EnumSource(Kernels.class)
    void linearBackwardShouldMatchFiniteDifferences(final Kernels kernels) {
        final Ops ops = kernels.ops();
        final int rows = 6;
        final int in = 20;
        final int out = 18;
        final float[] x = random(rows * in, 1, 1);
        final float[] w = random(out * in + out, 0.5, 2);
        final float[] r = random(rows * out, 1, 3);
        final float[] y = new float[rows * out];
        final float[] scratch = new float[in * (out + 32) + 64];
        final OpsFixtures.Loss loss = () -> {
            ops.linearForward(x, 0, w, 0, out * in, y, 0, rows, in, out, 0, out, scratch);
            return dot(r, y, 0, y.length);
        };
        final float[] dx = new float[x.length];
        final float[] g = new float[w.length];
        ops.linearBackwardInput(r, 0, w, 0, dx, 0, in, out, 0, rows, false);
        ops.linearBackwardWeight(r, 0, x, 0, g, 0, out * in, rows, in, out, 0, out);
        assertGradient("linear dx", x, 0, x.length, dx, x.length, 1e-2, loss, 4);
        assertGradient("linear dW", w, 0, out * in, g, 200, 1e-2, loss, 5);
        assertGradient("linear db", w, out * in, w.length, g, out, 1e-2, loss, 6);
    }

    @ParameterizedTest
    @EnumSource(Kernels.class)
    void layerNormBackwardShouldMatchFiniteDifferences(final Kernels kernels) {
        final Ops ops = kernels.ops();
        final int rows = 5;
        final int c = 19;
        final float[] x = random(rows * c, 1.5, 7);
        final float[] p = random(2 * c, 1, 8);
        final float[] r = random(rows * c, 1, 9);
        final float[] y = new float[x.length];
        final float[] mean = new float[rows];
        final float[] rstd = new float[rows];
        final OpsFixtures.Loss loss = () -> {
            ops.layerNormForward(x, 0, p, 0, c, y, 0, mean, rstd, 0, c, 0, rows);
            return dot(r, y, 0, y.length);
        };
        loss.eval();
        final float[] dx = new float[x.length];
        final float[] g = new float[2 * c];
        ops.layerNormBackwardInput(r, 0, x, 0, p, 0, mean, rstd, 0, dx, 0, c, 0, rows, false);
        ops.layerNormBackwardParams(r, 0, x, 0, mean, rstd, 0, g, 0, c, rows, c, 0, c);
        assertGradient("layerNorm dx", x, 0, x.length, dx, x.length, 1e-2, loss, 10);
        assertGradient("layerNorm dgamma/dbeta", p, 0, 2 * c, g, 2 * c, 1e-2, loss, 11);
    }

    @ParameterizedTest
    @EnumSource(Kernels.class)
    void geluBackwardShouldMatchFiniteDifferences(final Kernels kernels) {
        final Ops ops = kernels.ops();
        final int n = 45;
        final float[] h = random(n, 4, 12);
        final float[] r = random(n, 1, 13);
        final float[] a = new float[n];
        final OpsFixtures.Loss loss = () -> {
            ops.geluForward(h, 0, a, 0, n);
            return dot(r, a, 0, n);
        };
        final float[] dh = new float[n];
        ops.geluBackward(h, 0, r, 0, dh, 0, n);
        assertGradient("gelu", h, 0, n, dh, n, 1e-2, loss, 14);
    }

    @ParameterizedTest
    @EnumSource(Kernels.class)
    void attentionBackwardShouldMatchFiniteDifferences(final Kernels kernels) {
        final Ops ops = kernels.ops();
        final int seqLen = 16;
        final int channels = 32;
        final int heads = 2;
        final int batch = 2;
        final int pairs = batch * heads;
        final float[] qkv = random(batch * seqLen * 3 * channels, 1, 15);
        final float[] r = random(batch * seqLen * channels, 1, 16);
        final float[] out = new float[r.length];
        final float[] probs = new float[pairs * seqLen * seqLen];
        final float[] scratch = new float[seqLen * seqLen + 2 * channels * seqLen + 2 * seqLen + 64];
        final OpsFixtures.Loss loss = () -> {
            ops.attentionForward(qkv, 0, out, 0, probs, 0, seqLen, channels, heads, 0, pairs, scratch);
            return dot(r, out, 0, out.length);
        };
        loss.eval();
        final float[] dqkv = new float[qkv.length];
        ops.attentionBackward(r, 0, qkv, 0, probs, 0, dqkv, 0, seqLen, channels, heads, 0, pairs, scratch);
        assertGradient("attention dqkv", qkv, 0, qkv.length, dqkv, 500, 1e-2, loss, 17);
    }

    @ParameterizedTest
    @EnumSource(Kernels.class)
    void crossEntropyBackwardShouldMatchFiniteDifferences(final Kernels kernels) {
        final Ops ops = kernels.ops();
        final int rows = 4;
        final int vocab = 21;
        final float[] logits = random(rows * vocab, 3, 18);
        final int[] targets = randomInts(rows, vocab, 19);
        final float[] work = new float[logits.length];
        final float[] losses = new float[rows];
        final float scale = 0.5f;
        final OpsFixtures.Loss loss = () -> {
            System.arraycopy(logits, 0, work, 0, logits.length);
            ops.crossEntropyForward(work, vocab, targets, losses, 0, rows);
            double s = 0;
            for (final float l : losses) {
                s += l;
            }
            return scale * s;
        };
        loss.eval();
        ops.crossEntropyBackward(work, vocab, targets, scale, 0, rows);
        final float[] dlogits = work.clone();
        assertGradient("cross-entropy", logits, 0, logits.length, dlogits, logits.length, 1e-2, loss, 20);
    }

    @ParameterizedTest
    @EnumSource(Kernels.class)
    void routerBackwardShouldMatchFiniteDifferencesForSoftmaxAndSigmoid(final Kernels kernels) {
        for (final boolean sigmoid : new boolean[] {false, true}) {
            for (final int topK : new int[] {1, 2}) {
                checkRouter(kernels.ops(), sigmoid, topK);
            }
        }
    }

    // loss = sum r_gates * gates + sum_n sum_e dAux_e * normalisedScore_e(n) + zScale * sum_n lse_n^2
    private static void checkRouter(final Ops ops, final boolean sigmoid, final int topK) {
        final int rows = 6;
        final int channels = 10;
        final int experts = 5;
        final float[] x = random(rows * channels, 1, 21);
        final float[] wr = random(experts * channels, 1, 22);
        final float[] rGates = random(rows * topK, 1, 23);
        final float[] dAux = random(experts, 0.5, 24);
        final float zScale = 0.05f;
        final float[] logits = new float[rows * experts];
        final float[] scores = new float[rows * experts];
        final float[] lse = new float[rows];
        final int[] selected = new int[rows * topK];
        final float[] gates = new float[rows * topK];
        final float[] scratch = new float[channels * (experts + 32) + 64];
        final int[] baseSelected = new int[rows * topK];
        final OpsFixtures.Loss loss = () -> {
            ops.routerForward(x, 0, wr, 0, null, 0, sigmoid, channels, experts, topK, logits, 0, scores, 0, lse, 0,
                selected, 0, gates, 0, 0, rows, scratch);
            double s = dot(rGates, gates, 0, gates.length);
            for (int n = 0; n < rows; n++) {
                double total = 0;
                for (int e = 0; e < experts; e++) {
                    total += scores[n * experts + e];
                }
                for (int e = 0; e < experts; e++) {
                    s += dAux[e] * (sigmoid ? scores[n * experts + e] / total : scores[n * experts + e]);
                }
                s += zScale * (double) lse[n] * lse[n];
            }
            return s;
        };
        loss.eval();
        System.arraycopy(selected, 0, baseSelected, 0, selected.length);
        final float[] dlogits = new float[rows * experts];
        ops.routerBackward(logits, 0, scores, 0, lse, 0, selected, 0, gates, 0, rGates, 0, dAux, zScale, sigmoid,
            experts, topK, dlogits, 0, 0, rows);
        final float[] dx = new float[x.length];
        final float[] dw = new float[wr.length];
        ops.linearBackwardInput(dlogits, 0, wr, 0, dx, 0, channels, experts, 0, rows, false);
        ops.linearBackwardWeight(dlogits, 0, x, 0, dw, 0, -1, rows, channels, experts, 0, experts);
        // step 1e-3: small enough that no token changes its top-k (checked below)
        final OpsFixtures.Loss guarded = () -> {
            final double v = loss.eval();
            assertArrayEquals(baseSelected, selected,
                "a finite-difference step changed the routing; pick a smaller eps");
            return v;
        };
        final String what = "router sigmoid=" + sigmoid + " K=" + topK;
        assertGradient(what + " dx", x, 0, x.length, dx, x.length, 1e-3, guarded, 25,
            OpsFixtures.FD_ROUTER_ABS_TOLERANCE);
        assertGradient(what + " dWr", wr, 0, wr.length, dw, wr.length, 1e-3, guarded, 26,
            OpsFixtures.FD_ROUTER_ABS_TOLERANCE);
    }

    @ParameterizedTest
    @EnumSource(Kernels.class)
    void permuteAndCombineBackwardShouldMatchFiniteDifferences(final Kernels kernels) {
        final Ops ops = kernels.ops();
        final int tokens = 4;
        final int channels = 7;
        final int slotCount = 3;
        final int gated = 2;
        final int[] slots = {0, 5, 1, -1, 2, 3, 4, 7, 6, 8, -1, 9};
        final int rows = 10;
        final float[] y = random(rows * channels, 1, 27);
        final float[] weights = random(tokens * slotCount, 1, 28);
        final float[] residual = random(tokens * channels, 1, 29);
        final float[] r = random(tokens * channels, 1, 30);
        final float[] out = new float[tokens * channels];
        final OpsFixtures.Loss loss = () -> {
            ops.combineForward(y, 0, slots, 0, weights, 0, slotCount, residual, 0, out, 0, channels, 0, tokens);
            return dot(r, out, 0, out.length);
        };
        final float[] dy = new float[y.length];
        final float[] dgates = new float[tokens * gated];
        ops.combineBackward(r, 0, y, 0, slots, 0, weights, 0, slotCount, gated, dy, 0, dgates, 0, channels, 0, tokens);
        assertGradient("combine dy", y, 0, y.length, dy, y.length, 1e-2, loss, 31);
        final float[] dWeights = new float[weights.length];
        for (int n = 0; n < tokens; n++) {
            System.arraycopy(dgates, n * gated, dWeights, n * slotCount, gated);
        }
        // the gated slots' weights (the shared slot's weight is a constant 1 in the model)
        for (int n = 0; n < tokens; n++) {
            assertGradient("combine dgates", weights, n * slotCount, n * slotCount + gated, dWeights, gated, 1e-2,
                loss, 32);
        }
        // permute = gather rows of x by token; its backward is the unpermute sum
        final int[] token = new int[rows];
        for (int n = 0; n < tokens; n++) {
            for (int j = 0; j < slotCount; j++) {
                if (slots[n * slotCount + j] >= 0) {
                    token[slots[n * slotCount + j]] = n;
                }
            }
        }
        final float[] x = random(tokens * channels, 1, 33);
        final float[] rp = random(rows * channels, 1, 34);
        final float[] perm = new float[rows * channels];
        final OpsFixtures.Loss permLoss = () -> {
            ops.gatherRows(x, 0, token, 0, perm, 0, channels, 0, rows);
            return dot(rp, perm, 0, perm.length);
        };
        final float[] dx = new float[x.length];
        ops.scatterBackward(rp, 0, slots, 0, slotCount, dx, 0, channels, 0, tokens, false);
        assertGradient("unpermute", x, 0, x.length, dx, x.length, 1e-2, permLoss, 35);
    }

    @ParameterizedTest
    @EnumSource(Kernels.class)
    void embeddingBackwardShouldMatchFiniteDifferences(final Kernels kernels) {
        final Ops ops = kernels.ops();
        final int vocab = 6;
        final int seqLen = 4;
        final int channels = 9;
        final int tokens = 8;
        final float[] p = random((vocab + seqLen) * channels, 1, 36);
        final int[] tok = randomInts(tokens, vocab, 37);
        final float[] r = random(tokens * channels, 1, 38);
        final float[] x = new float[tokens * channels];
        final OpsFixtures.Loss loss = () -> {
            ops.embeddingForward(tok, p, 0, vocab * channels, x, seqLen, channels, 0, tokens);
            return dot(r, x, 0, x.length);
        };
        final float[] g = new float[p.length];
        ops.embeddingBackward(tok, r, tokens, g, 0, vocab * channels, vocab, seqLen, channels, 0, channels);
        assertGradient("embedding", p, 0, p.length, g, p.length, 1e-2, loss, 39);
    }
}
