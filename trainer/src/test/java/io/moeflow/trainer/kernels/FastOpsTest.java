package io.moeflow.trainer.kernels;

import static io.moeflow.trainer.kernels.OpsFixtures.assertClose;
import static io.moeflow.trainer.kernels.OpsFixtures.random;
import static io.moeflow.trainer.kernels.OpsFixtures.randomInts;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.api.Test;

/**
 * Holds every fast kernel to the reference within {@link OpsFixtures#FAST_TOLERANCE}, on vector-aligned shapes and
 * on odd ones that exercise the edges and scalar tails, and checks that splitting a fast kernel's range in two gives
 * the same bits as one call (what makes training independent of the thread count).
 */
class FastOpsTest {
    private static final Ops REF = ReferenceOps.INSTANCE;
    private static final Ops FAST = FastOps.INSTANCE;

    @ParameterizedTest(name = "rows={0} in={1} out={2}")
    @CsvSource({"9, 64, 96", "7, 37, 45", "1, 16, 16", "13, 128, 256", "4, 5, 3"})
    void shouldMatchReferenceForLinearForwardWithAndWithoutBias(final int rows, final int in, final int out) {
        final float[] x = random(rows * in, 1, 1);
        final float[] w = random(out * in + out, 0.5, 2);
        for (final int bOff : new int[] {out * in, -1}) {
            final float[] yr = new float[rows * out];
            final float[] yf = new float[rows * out];
            REF.linearForward(x, 0, w, 0, bOff, yr, 0, rows, in, out, 0, out, new float[in * (out + 32) + 64]);
            FAST.linearForward(x, 0, w, 0, bOff, yf, 0, rows, in, out, 0, out, new float[in * (out + 32) + 64]);
            assertClose("linearForward bias=" + bOff, yr, yf);
            // two column ranges, one split at an odd column, give the same bits
            final float[] ys = new float[rows * out];
            final int mid = out / 2 + 1;
            FAST.linearForward(x, 0, w, 0, bOff, ys, 0, rows, in, out, 0, Math.min(mid, out),
                new float[in * (out + 32) + 64]);
            FAST.linearForward(x, 0, w, 0, bOff, ys, 0, rows, in, out, Math.min(mid, out), out,
                new float[in * (out + 32) + 64]);
            assertArrayEquals(yf, ys, "column split must not change the result bits");
        }
    }

    @ParameterizedTest(name = "rows={0} in={1} out={2}")
    @CsvSource({"9, 64, 96", "7, 37, 45", "13, 128, 256", "5, 3, 4"})
    void shouldMatchReferenceForLinearBackward(final int rows, final int in, final int out) {
        final float[] x = random(rows * in, 1, 3);
        final float[] w = random(out * in, 0.5, 4);
        final float[] dy = random(rows * out, 1, 5);
        for (final boolean accumulate : new boolean[] {false, true}) {
            final float[] dxr = random(rows * in, 1, 6);
            final float[] dxf = dxr.clone();
            final float[] dxs = dxr.clone();
            REF.linearBackwardInput(dy, 0, w, 0, dxr, 0, in, out, 0, rows, accumulate);
            FAST.linearBackwardInput(dy, 0, w, 0, dxf, 0, in, out, 0, rows, accumulate);
            assertClose("linearBackwardInput acc=" + accumulate, dxr, dxf);
            FAST.linearBackwardInput(dy, 0, w, 0, dxs, 0, in, out, 0, rows / 2 + 1, accumulate);
            FAST.linearBackwardInput(dy, 0, w, 0, dxs, 0, in, out, rows / 2 + 1, rows, accumulate);
            assertArrayEquals(dxf, dxs, "row split must not change the result bits");
        }
        final float[] gr = new float[out * in + out];
        final float[] gf = random(out * in + out, 1, 7);
        final float[] gs = new float[out * in + out];
        REF.linearBackwardWeight(dy, 0, x, 0, gr, 0, out * in, rows, in, out, 0, out);
        FAST.linearBackwardWeight(dy, 0, x, 0, gf, 0, out * in, rows, in, out, 0, out);
        assertClose("linearBackwardWeight", gr, gf);
        FAST.linearBackwardWeight(dy, 0, x, 0, gs, 0, out * in, rows, in, out, 0, out / 2 + 1);
        FAST.linearBackwardWeight(dy, 0, x, 0, gs, 0, out * in, rows, in, out, out / 2 + 1, out);
        assertArrayEquals(gf, gs, "output-row split must not change the result bits");
    }

    @Test
    void shouldWriteExactZerosForWeightGradientOfAnEmptyBlock() {
        final float[] g = random(8 * 5 + 8, 1, 8);
        FAST.linearBackwardWeight(new float[0], 0, new float[0], 0, g, 0, 40, 0, 5, 8, 0, 8);
        for (final float v : g) {
            assertEquals(0f, v);
        }
    }

    @ParameterizedTest(name = "channels={0}")
    @CsvSource({"64", "37", "128"})
    void shouldMatchReferenceForLayerNorm(final int channels) {
        final int rows = 11;
        final float[] x = random(rows * channels, 2, 9);
        for (int i = 0; i < x.length; i++) {
            x[i] += 0.5f;
        }
        final float[] p = random(2 * channels, 1, 10);
        final float[] yr = new float[x.length];
        final float[] yf = new float[x.length];
        final float[] mr = new float[rows];
        final float[] rr = new float[rows];
        final float[] mf = new float[rows];
        final float[] rf = new float[rows];
        REF.layerNormForward(x, 0, p, 0, channels, yr, 0, mr, rr, 0, channels, 0, rows);
        FAST.layerNormForward(x, 0, p, 0, channels, yf, 0, mf, rf, 0, channels, 0, rows);
        assertClose("layerNorm y", yr, yf);
        assertClose("layerNorm mean", mr, mf);
        assertClose("layerNorm rstd", rr, rf);
        final float[] dy = random(x.length, 1, 11);
        final float[] dxr = random(x.length, 1, 12);
        final float[] dxf = dxr.clone();
        REF.layerNormBackwardInput(dy, 0, x, 0, p, 0, mr, rr, 0, dxr, 0, channels, 0, rows, true);
        FAST.layerNormBackwardInput(dy, 0, x, 0, p, 0, mr, rr, 0, dxf, 0, channels, 0, rows, true);
        assertClose("layerNorm dx", dxr, dxf);
        final float[] gr = new float[2 * channels];
        final float[] gf = new float[2 * channels];
        final float[] gs = new float[2 * channels];
        REF.layerNormBackwardParams(dy, 0, x, 0, mr, rr, 0, gr, 0, channels, rows, channels, 0, channels);
        FAST.layerNormBackwardParams(dy, 0, x, 0, mr, rr, 0, gf, 0, channels, rows, channels, 0, channels);
        assertClose("layerNorm dgamma/dbeta", gr, gf);
        FAST.layerNormBackwardParams(dy, 0, x, 0, mr, rr, 0, gs, 0, channels, rows, channels, 0, 16);
        FAST.layerNormBackwardParams(dy, 0, x, 0, mr, rr, 0, gs, 0, channels, rows, channels, 16, channels);
        assertArrayEquals(gf, gs, "channel split must not change the result bits");
    }

    @Test
    void shouldMatchReferenceForGeluAndAgreeBitwiseBetweenVectorBodyAndScalarTail() {
        final int n = 16 * 40 + 7;
        final float[] h = random(n, 6, 13);
        h[0] = 0f;
        h[1] = -9f;
        h[2] = 9f;
        final float[] ar = new float[n];
        final float[] af = new float[n];
        REF.geluForward(h, 0, ar, 0, n);
        FAST.geluForward(h, 0, af, 0, n);
        assertClose("gelu", ar, af);
        final float[] da = random(n, 1, 14);
        final float[] dr = new float[n];
        final float[] df = new float[n];
        REF.geluBackward(h, 0, da, 0, dr, 0, n);
        FAST.geluBackward(h, 0, da, 0, df, 0, n);
        assertClose("gelu'", dr, df);
        // shifted by one element, every value moves between vector lanes and the scalar tail
        final float[] shifted = new float[n];
        FAST.geluForward(h, 1, shifted, 1, n - 1);
        for (int i = 1; i < n; i++) {
            assertEquals(Float.floatToRawIntBits(af[i]), Float.floatToRawIntBits(shifted[i]), "gelu at " + i);
        }
    }

    @ParameterizedTest(name = "T={0} C={1} H={2}")
    @CsvSource({"32, 64, 2", "16, 64, 4", "8, 12, 3"})
    void shouldMatchReferenceForCausalAttention(final int seqLen, final int channels, final int heads) {
        final int batch = 2;
        final int pairs = batch * heads;
        final float[] qkv = random(batch * seqLen * 3 * channels, 1.5, 15);
        final int scratch = seqLen * seqLen + 2 * channels * seqLen + 2 * seqLen + 64;
        final float[] or = new float[batch * seqLen * channels];
        final float[] of = new float[or.length];
        final float[] pr = new float[pairs * seqLen * seqLen];
        final float[] pf = new float[pr.length];
        REF.attentionForward(qkv, 0, or, 0, pr, 0, seqLen, channels, heads, 0, pairs, new float[scratch]);
        FAST.attentionForward(qkv, 0, of, 0, pf, 0, seqLen, channels, heads, 0, pairs, new float[scratch]);
        assertClose("attention out", or, of);
        assertClose("attention probs", pr, pf);
        final float[] dout = random(or.length, 1, 16);
        final float[] dr = new float[qkv.length];
        final float[] df = new float[qkv.length];
        REF.attentionBackward(dout, 0, qkv, 0, pr, 0, dr, 0, seqLen, channels, heads, 0, pairs, new float[scratch]);
        FAST.attentionBackward(dout, 0, qkv, 0, pf, 0, df, 0, seqLen, channels, heads, 0, pairs, new float[scratch]);
        assertClose("attention dqkv", dr, df);
    }

    @ParameterizedTest(name = "V={0}")
    @CsvSource({"256", "37"})
    void shouldMatchReferenceForCrossEntropy(final int vocab) {
        final int rows = 9;
        final float[] logits = random(rows * vocab, 8, 17);
        final int[] targets = randomInts(rows, vocab, 18);
        final float[] lr = logits.clone();
        final float[] lf = logits.clone();
        final float[] cr = new float[rows];
        final float[] cf = new float[rows];
        REF.crossEntropyForward(lr, vocab, targets, cr, 0, rows);
        FAST.crossEntropyForward(lf, vocab, targets, cf, 0, rows);
        assertClose("cross-entropy loss", cr, cf);
        assertClose("cross-entropy probs", lr, lf);
        REF.crossEntropyBackward(lr, vocab, targets, 0.25f, 0, rows);
        FAST.crossEntropyBackward(lf, vocab, targets, 0.25f, 0, rows);
        assertClose("cross-entropy dlogits", lr, lf);
    }

    @ParameterizedTest(name = "sigmoid={0} E={1} K={2} bias={3}")
    @CsvSource({"false, 16, 2, false", "true, 16, 2, true", "false, 5, 1, false", "true, 7, 3, false",
        "false, 20, 4, true"})
    void shouldMatchReferenceForRouter(final boolean sigmoid, final int experts, final int topK, final boolean biased) {
        final int rows = 13;
        final int channels = 24;
        final float[] x = random(rows * channels, 1, 19);
        final float[] wr = random(experts * channels, 0.7, 20);
        final float[] bias = biased ? random(experts, 0.05, 21) : null;
        final float[][] ref = routerOutputs(REF, x, wr, bias, sigmoid, rows, channels, experts, topK);
        final float[][] fast = routerOutputs(FAST, x, wr, bias, sigmoid, rows, channels, experts, topK);
        final String[] names = {"logits", "scores", "lse", "gates", "selected", "dlogits"};
        for (int i = 0; i < names.length; i++) {
            assertClose("router " + names[i], ref[i], fast[i]);
        }
    }

    static float[][] routerOutputs(final Ops ops, final float[] x, final float[] wr, final float[] bias,
        final boolean sigmoid, final int rows, final int channels, final int experts, final int topK) {
        final float[] logits = new float[rows * experts];
        final float[] scores = new float[rows * experts];
        final float[] lse = new float[rows];
        final int[] selected = new int[rows * topK];
        final float[] gates = new float[rows * topK];
        ops.routerForward(x, 0, wr, 0, bias, 0, sigmoid, channels, experts, topK, logits, 0, scores, 0, lse, 0,
            selected, 0, gates, 0, 0, rows, new float[channels * (experts + 32) + 64]);
        final float[] dgates = random(rows * topK, 1, 22);
        final float[] dAux = random(experts, 0.1, 23);
        final float[] dlogits = new float[rows * experts];
        ops.routerBackward(logits, 0, scores, 0, lse, 0, selected, 0, gates, 0, dgates, 0, dAux, 0.01f, sigmoid,
            experts, topK, dlogits, 0, 0, rows);
        final float[] sel = new float[selected.length];
        for (int i = 0; i < sel.length; i++) {
            sel[i] = selected[i];
        }
        return new float[][] {logits, scores, lse, gates, sel, dlogits};
    }

    @ParameterizedTest(name = "channels={0}")
    @CsvSource({"32", "21"})
    void shouldMatchReferenceForPermuteCombineAndEmbedding(final int channels) {
        final int tokens = 6;
        final int slotCount = 3;
        final int rows = tokens * slotCount;
        final int[] slots = new int[tokens * slotCount];
        for (int i = 0; i < slots.length; i++) {
            slots[i] = i % 4 == 3 ? -1 : (i * 7) % rows; // a permutation with some dropped slots
        }
        final float[] weights = random(slots.length, 1, 24);
        final float[] y = random(rows * channels, 1, 25);
        final float[] residual = random(tokens * channels, 1, 26);
        final float[] outR = new float[tokens * channels];
        final float[] outF = new float[tokens * channels];
        REF.combineForward(y, 0, slots, 0, weights, 0, slotCount, residual, 0, outR, 0, channels, 0, tokens);
        FAST.combineForward(y, 0, slots, 0, weights, 0, slotCount, residual, 0, outF, 0, channels, 0, tokens);
        assertClose("combine", outR, outF);
        final float[] dout = random(tokens * channels, 1, 27);
        final float[] dyR = new float[rows * channels];
        final float[] dyF = new float[rows * channels];
        final float[] dgR = new float[tokens * 2];
        final float[] dgF = new float[tokens * 2];
        REF.combineBackward(dout, 0, y, 0, slots, 0, weights, 0, slotCount, 2, dyR, 0, dgR, 0, channels, 0, tokens);
        FAST.combineBackward(dout, 0, y, 0, slots, 0, weights, 0, slotCount, 2, dyF, 0, dgF, 0, channels, 0, tokens);
        assertClose("combine dy", dyR, dyF);
        assertClose("combine dgates", dgR, dgF);
        final float[] dxR = new float[tokens * channels];
        final float[] dxF = new float[tokens * channels];
        REF.scatterBackward(dyR, 0, slots, 0, slotCount, dxR, 0, channels, 0, tokens, false);
        FAST.scatterBackward(dyR, 0, slots, 0, slotCount, dxF, 0, channels, 0, tokens, false);
        assertClose("unpermute", dxR, dxF);
        final int[] index = randomInts(rows, tokens, 28);
        final float[] gR = new float[rows * channels];
        final float[] gF = new float[rows * channels];
        REF.gatherRows(residual, 0, index, 0, gR, 0, channels, 0, rows);
        FAST.gatherRows(residual, 0, index, 0, gF, 0, channels, 0, rows);
        assertArrayEquals(gR, gF);

        final int vocab = 5;
        final int seqLen = 3;
        final float[] p = random((vocab + seqLen) * channels, 1, 29);
        final int[] tok = randomInts(tokens, vocab, 30);
        final float[] xR = new float[tokens * channels];
        final float[] xF = new float[tokens * channels];
        REF.embeddingForward(tok, p, 0, vocab * channels, xR, seqLen, channels, 0, tokens);
        FAST.embeddingForward(tok, p, 0, vocab * channels, xF, seqLen, channels, 0, tokens);
        assertClose("embedding", xR, xF);
        final float[] ebR = random(p.length, 1, 31);
        final float[] ebF = random(p.length, 1, 32);
        REF.embeddingBackward(tok, dout, tokens, ebR, 0, vocab * channels, vocab, seqLen, channels, 0, channels);
        FAST.embeddingBackward(tok, dout, tokens, ebF, 0, vocab * channels, vocab, seqLen, channels, 0, channels);
        assertClose("embedding grads", ebR, ebF);
    }
}
