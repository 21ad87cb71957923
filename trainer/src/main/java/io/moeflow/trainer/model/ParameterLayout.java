package io.moeflow.trainer.model;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/**
 * Where every tensor lives in the flat parameter slab, in PyTorch state_dict order and names. Gradients use the same
 * offsets in the gradient slab.
 */
final class ParameterLayout {
    /** Offsets of one transformer block's tensors. Experts 0..E-1 are routed, E..E+S-1 are the shared ones. */
    static final class Block {
        int ln1Weight;
        int ln1Bias;
        int qkvWeight;
        int qkvBias;
        int projWeight;
        int projBias;
        int ln2Weight;
        int ln2Bias;
        int router;
        int[] w1;
        int[] b1;
        int[] w2;
        int[] b2;
    }

    final List<TensorView> views;
    final int size;
    final int wte;
    final int wpe;
    final int lnfWeight;
    final int lnfBias;
    final int head;
    final Block[] blocks;

    private final List<TensorView> building = new ArrayList<>();
    private int cursor;

    ParameterLayout(final ModelConfig c) {
        final int C = c.channels();
        final int F = c.expertHidden();
        final int experts = c.experts() + c.sharedExperts();
        wte = add("wte.weight", false, c.vocabSize(), C);
        wpe = add("wpe.weight", false, c.seqLen(), C);
        blocks = new Block[c.layers()];
        for (int l = 0; l < c.layers(); l++) {
            final String p = "blocks." + l + ".";
            final Block b = new Block();
            b.ln1Weight = add(p + "ln1.weight", false, C);
            b.ln1Bias = add(p + "ln1.bias", false, C);
            b.qkvWeight = add(p + "attn.qkv.weight", true, 3 * C, C);
            b.qkvBias = add(p + "attn.qkv.bias", false, 3 * C);
            b.projWeight = add(p + "attn.proj.weight", true, C, C);
            b.projBias = add(p + "attn.proj.bias", false, C);
            b.ln2Weight = add(p + "ln2.weight", false, C);
            b.ln2Bias = add(p + "ln2.bias", false, C);
            b.router = add(p + "moe.router.weight", true, c.experts(), C);
            b.w1 = new int[experts];
            b.b1 = new int[experts];
            b.w2 = new int[experts];
            b.b2 = new int[experts];
            for (int e = 0; e < experts; e++) {
                final String ep = e < c.experts()
                    ? p + "moe.experts." + e + "."
                    : p + "moe.shared." + (e - c.experts()) + ".";
                b.w1[e] = add(ep + "w1.weight", true, F, C);
                b.b1[e] = add(ep + "w1.bias", false, F);
                b.w2[e] = add(ep + "w2.weight", true, C, F);
                b.b2[e] = add(ep + "w2.bias", false, C);
            }
            blocks[l] = b;
        }
        lnfWeight = add("lnf.weight", false, C);
        lnfBias = add("lnf.bias", false, C);
        head = add("head.weight", true, c.vocabSize(), C);
        size = cursor;
        views = Collections.unmodifiableList(new ArrayList<>(building));
        if (size != c.parameterCount()) {
            throw new IllegalStateException("layout size=" + size + " != parameterCount=" + c.parameterCount());
        }
    }

    private int add(final String name, final boolean decay, final int... shape) {
        final TensorView v = new TensorView(name, cursor, shape, decay);
        building.add(v);
        cursor += v.length();
        return v.offset();
    }
}
