package io.moeflow.trainer.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.moeflow.trainer.AllocationProbe;
import io.moeflow.trainer.kernels.Kernels;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

class MoeModelTest {
    /**
     * Whole-model fast vs reference: |fast - reference| &lt;= MODEL_TOLERANCE * max|reference| per tensor (and for the
     * loss, relative). Looser than the per-op tolerance because errors compound over two blocks.
     */
    static final double MODEL_TOLERANCE = 2e-4;

    static ModelConfig small(final RouterScore score, final int shared, final double capacity) {
        return new ModelConfig(32, 16, 32, 2, 2, 4, 2, 32, shared, score, 0.01, 0.001, false, 1e-3, capacity, 0.05);
    }

    @Test
    void shouldMatchReferenceKernelsWithFastKernels() {
        for (final RouterScore score : RouterScore.values()) {
            final ModelConfig c = small(score, 1, 0.0);
            try (MoeModel fast = new MoeModel(c, 3, 2, Kernels.FAST, 5);
                 MoeModel ref = new MoeModel(c, 3, 2, Kernels.REFERENCE, 5)) {
                final int[] tokens = GradCheck.randomTokens(c, 3, 6);
                final double lf = fast.forward(tokens);
                final double lr = ref.forward(tokens);
                assertEquals(lr, lf, MODEL_TOLERANCE * lr, "loss");
                assertArrayEquals(ref.expertLoad(), fast.expertLoad(), "routing decisions");
                fast.backward();
                ref.backward();
                for (final TensorView v : ref.tensors()) {
                    double scale = 0;
                    double worst = 0;
                    for (int i = v.offset(); i < v.offset() + v.length(); i++) {
                        scale = Math.max(scale, Math.abs(ref.grads()[i]));
                        worst = Math.max(worst, Math.abs(ref.grads()[i] - fast.grads()[i]));
                    }
                    assertTrue(worst <= MODEL_TOLERANCE * Math.max(scale, 1e-6), score + " " + v.name() +
                        ": fast grad differs by " + worst + " (scale " + scale + ")");
                }
            }
        }
    }

    @Test
    void shouldBeBitwiseIdenticalAcrossRunsAndThreadCounts() {
        final ModelConfig c = small(RouterScore.SOFTMAX, 1, 1.0);
        final int[] tokens = GradCheck.randomTokens(c, 4, 7);
        final double[][] losses = new double[4][];
        final float[][] params = new float[4][];
        final int[] threadCounts = {1, 2, 3, 2};
        for (int run = 0; run < threadCounts.length; run++) {
            try (MoeModel m = new MoeModel(c, 4, threadCounts[run], Kernels.FAST, 9)) {
                losses[run] = sgd(m, tokens, 3, 0.05f);
                params[run] = m.params().clone();
            }
        }
        for (int run = 1; run < threadCounts.length; run++) {
            assertArrayEquals(losses[0], losses[run], "losses with threads=" + threadCounts[run]);
            assertArrayEquals(params[0], params[run], "params with threads=" + threadCounts[run]);
        }
    }

    static double[] sgd(final MoeModel m, final int[] tokens, final int steps, final float lr) {
        final double[] losses = new double[steps];
        for (int s = 0; s < steps; s++) {
            losses[s] = m.forward(tokens);
            m.backward();
            final float[] p = m.params();
            final float[] g = m.grads();
            for (int i = 0; i < p.length; i++) {
                p[i] -= lr * g[i];
            }
        }
        return losses;
    }

    @ParameterizedTest
    @EnumSource(Kernels.class)
    void shouldGiveAnExpertWithoutTokensExactlyZeroGradientsAndFiniteLoss(final Kernels kernels) {
        final ModelConfig c = new ModelConfig(32, 16, 32, 2, 2, 4, 2, 32, 0, RouterScore.SOFTMAX, 0.01, 0.001, true,
            1e-3, 0.0, 0.05);
        try (MoeModel m = new MoeModel(c, 2, 2, kernels, 3)) {
            m.expertBias(0)[1] = Float.NEGATIVE_INFINITY;
            m.expertBias(1)[1] = Float.NEGATIVE_INFINITY;
            final int[] tokens = GradCheck.randomTokens(c, 2, 4);
            java.util.Arrays.fill(m.grads(), Float.NaN); // backward must overwrite everything
            assertTrue(Double.isFinite(m.forward(tokens)));
            m.backward();
            for (final TensorView v : m.tensors()) {
                final boolean idle = v.name().contains(".moe.experts.1.");
                for (int i = v.offset(); i < v.offset() + v.length(); i++) {
                    final float g = m.grads()[i];
                    assertTrue(Float.isFinite(g), v.name() + " has a non-finite gradient");
                    if (idle) {
                        assertEquals(0f, g, v.name() + " of the idle expert");
                    }
                }
            }
            assertEquals(0, m.expertLoad()[1]);
            assertEquals("blocks.1.moe.router.expert_bias", MoeModel.expertBiasName(1));
            assertEquals(0, m.expertLoad()[c.experts() + 1]);
        }
    }

    @Test
    void shouldDropFirstChoicesLastAndEarlierTokensFirstWhenOverCapacity() {
        final ModelConfig c = small(RouterScore.SOFTMAX, 0, 0.5);
        try (MoeModel m = new MoeModel(c, 4, 2, Kernels.FAST, 5)) {
            m.forward(GradCheck.randomTokens(c, 4, 6));
            final int n = 4 * c.seqLen();
            final int k = c.topK();
            final int capacity = (int) Math.ceil((double) k * n / c.experts() * 0.5);
            int expectedDropped = 0;
            for (int l = 0; l < c.layers(); l++) {
                int loadSum = 0;
                for (int e = 0; e < c.experts(); e++) {
                    final int load = m.expertLoad()[l * c.experts() + e];
                    loadSum += load;
                    expectedDropped += Math.max(0, load - capacity);
                }
                assertEquals(k * n, loadSum, "load counts every (token, expert) pair before dropping");
            }
            assertEquals(expectedDropped, m.droppedTokens());
            assertTrue(expectedDropped > 0);
            final int[] selected = m.routingSelected();
            final int[] slots = m.routingSlots();
            for (int l = 0; l < c.layers(); l++) {
                for (int e = 0; e < c.experts(); e++) {
                    // walk the priority order (choice rank, then token): kept pairs must form a prefix
                    boolean droppedSeen = false;
                    for (int rank = 0; rank < k; rank++) {
                        for (int t = 0; t < n; t++) {
                            if (selected[(l * n + t) * k + rank] != e) {
                                continue;
                            }
                            final boolean kept = slots[(l * n + t) * k + rank] >= 0;
                            assertTrue(!kept || !droppedSeen, "layer " + l + " expert " + e + ": a pair at rank " +
                                rank + " token " + t + " was kept after an earlier one was dropped");
                            droppedSeen |= !kept;
                        }
                    }
                }
            }
        }
    }

    @Test
    void shouldComputeAuxAndZLossesFromTheirFormulasOnUniformRouting() {
        for (final RouterScore score : RouterScore.values()) {
            // zero router weights: every logit is 0, so the normalised scores are uniform (1/E), lse = ln E, and the
            // top-2 tie goes to experts 0 and 1: f_0 = f_1 = 1/2, aux = coef * E * (1/2 + 1/2) / E = coef per layer
            final ModelConfig c = new ModelConfig(32, 16, 32, 2, 2, 4, 2, 32, 0, score, 0.01, 0.001, false, 1e-3,
                0.0, 0.05);
            try (MoeModel m = new MoeModel(c, 2, 2, Kernels.FAST, 5)) {
                zeroRouters(m);
                m.forward(GradCheck.randomTokens(c, 2, 6));
                assertEquals(2 * 0.01, m.auxLoss(), 1e-7, score + " aux");
                assertEquals(2 * 0.001 * Math.log(4) * Math.log(4), m.zLoss(), 1e-7, score + " z");
                final int n = 2 * c.seqLen();
                for (int l = 0; l < c.layers(); l++) {
                    assertEquals(n, m.expertLoad()[l * 4]);
                    assertEquals(n, m.expertLoad()[l * 4 + 1]);
                }
            }
        }
    }

    @Test
    void shouldUseTheBalancingBiasForSelectionOnlyNotForGateWeights() {
        final ModelConfig c = new ModelConfig(32, 16, 32, 1, 2, 4, 2, 32, 0, RouterScore.SIGMOID, 0.0, 0.0, true,
            1e-3, 0.0, 0.05);
        try (MoeModel m = new MoeModel(c, 1, 1, Kernels.REFERENCE, 5)) {
            zeroRouters(m);
            m.expertBias(0)[2] = 0.3f;
            m.expertBias(0)[3] = 0.2f;
            m.forward(GradCheck.randomTokens(c, 1, 6));
            for (int t = 0; t < c.seqLen(); t++) {
                assertEquals(2, m.routingSelected()[t * 2], "the larger bias wins the selection");
                assertEquals(3, m.routingSelected()[t * 2 + 1]);
                // scores are all sigmoid(0) = 0.5: unbiased gates are 0.5 / (0.5 + 0.5) each
                assertEquals(0.5f, m.routingGates()[t * 2], 1e-7f);
                assertEquals(0.5f, m.routingGates()[t * 2 + 1], 1e-7f);
            }
        }
    }

    private static void zeroRouters(final MoeModel m) {
        for (final TensorView v : m.tensors()) {
            if (v.name().endsWith("moe.router.weight")) {
                java.util.Arrays.fill(m.params(), v.offset(), v.offset() + v.length(), 0f);
            }
        }
    }

    @Test
    void shouldMoveBalancingBiasBySignOfLoadImbalance() {
        final ModelConfig c = new ModelConfig(32, 16, 32, 1, 2, 4, 2, 32, 0, RouterScore.SIGMOID, 0.0, 0.0, true,
            0.25, 0.0, 0.05);
        try (MoeModel m = new MoeModel(c, 2, 1, Kernels.FAST, 5)) {
            m.forward(GradCheck.randomTokens(c, 2, 6));
            final int[] load = m.expertLoad().clone();
            final double mean = 2.0 * 2 * c.seqLen() / c.experts();
            m.updateBalancingBias();
            for (int e = 0; e < c.experts(); e++) {
                assertEquals((float) (0.25 * Math.signum(mean - load[e])), m.expertBias(0)[e], "expert " + e +
                    " load " + load[e] + " mean " + mean);
            }
        }
        final ModelConfig off = small(RouterScore.SOFTMAX, 0, 0.0);
        try (MoeModel m = new MoeModel(off, 1, 1, Kernels.FAST, 5)) {
            m.forward(GradCheck.randomTokens(off, 1, 6));
            m.updateBalancingBias();
            assertArrayEquals(new float[off.experts()], m.expertBias(0), "disabled: no change");
        }
    }

    @Test
    void shouldComputeNextTokenLogitsConsistentWithTrainingLossAndIgnoringPadding() {
        final ModelConfig c = small(RouterScore.SIGMOID, 1, 0.0);
        try (MoeModel m = new MoeModel(c, 1, 2, Kernels.FAST, 5)) {
            final int[] tokens = GradCheck.randomTokens(c, 1, 8);
            m.forward(tokens);
            final float[] trainLosses = m.tokenLosses().clone();
            final float[] logits = new float[c.vocabSize()];
            for (final int length : new int[] {1, 7, c.seqLen()}) {
                m.logits(tokens, length, logits);
                double max = Double.NEGATIVE_INFINITY;
                for (final float v : logits) {
                    max = Math.max(max, v);
                }
                double sum = 0;
                for (final float v : logits) {
                    sum += Math.exp(v - max);
                }
                final double loss = Math.log(sum) + max - logits[tokens[length]];
                assertEquals(trainLosses[length - 1], loss, 1e-4, "position " + (length - 1));
            }
            // what follows the context does not matter
            final int[] other = tokens.clone();
            for (int t = 7; t < other.length; t++) {
                other[t] = (other[t] + 5) % c.vocabSize();
            }
            final float[] a = new float[c.vocabSize()];
            final float[] b = new float[c.vocabSize()];
            m.logits(tokens, 7, a);
            m.logits(other, 7, b);
            assertArrayEquals(a, b);
            assertArrayEquals(trainLosses, m.tokenLosses(), "logits() must not touch the training batch's results");
        }
    }

    @Test
    void shouldRouteDroplessWhenComputingLogitsForGeneration() {
        final ModelConfig capped = small(RouterScore.SOFTMAX, 1, 0.25);
        final ModelConfig dropless = small(RouterScore.SOFTMAX, 1, 0.0);
        try (MoeModel a = new MoeModel(capped, 1, 2, Kernels.FAST, 5);
             MoeModel b = new MoeModel(dropless, 1, 2, Kernels.FAST, 5)) {
            final int[] tokens = GradCheck.randomTokens(capped, 1, 8);
            a.forward(tokens);
            assertTrue(a.droppedTokens() > 0, "the capped model drops in training");
            final float[] la = new float[capped.vocabSize()];
            final float[] lb = new float[capped.vocabSize()];
            a.logits(tokens, capped.seqLen(), la);
            b.logits(tokens, capped.seqLen(), lb);
            assertArrayEquals(lb, la, "same parameters, and generation never drops");
        }
    }

    @Test
    void shouldRejectTokensOutsideTheVocabularyWithTheirPosition() {
        final ModelConfig c = small(RouterScore.SOFTMAX, 0, 0.0);
        try (MoeModel m = new MoeModel(c, 2, 1, Kernels.FAST, 5)) {
            final int[] tokens = GradCheck.randomTokens(c, 2, 8);
            tokens[c.seqLen() + 1 + 3] = c.vocabSize();
            final IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> m.forward(tokens));
            assertTrue(e.getMessage().contains("sequence 1, position 3"), e.getMessage());
            assertThrows(IllegalArgumentException.class, () -> m.forward(new int[5]));
            assertThrows(IllegalStateException.class, m::backward);
        }
    }

    @Test
    void shouldLayOutTensorsWithPyTorchNamesShapesAndDecayFlags() {
        final ModelConfig c = small(RouterScore.SOFTMAX, 1, 0.0);
        try (MoeModel m = new MoeModel(c, 1, 1, Kernels.REFERENCE, 5)) {
            final List<TensorView> views = m.tensors();
            int offset = 0;
            for (final TensorView v : views) {
                assertEquals(offset, v.offset(), v.name() + " follows the previous tensor");
                offset += v.length();
                final boolean matrix = v.shape().length == 2 && !v.name().startsWith("w");
                assertEquals(matrix, v.decay(), v.name() + " decay flag");
            }
            assertEquals(m.params().length, offset);
            for (int i = 0; i < views.size(); i++) {
                final var segment = m.paramSegments().get(i);
                assertEquals(views.get(i).name(), segment.name());
                assertEquals(views.get(i).offset(), segment.offset());
                assertEquals(views.get(i).length(), segment.length());
                assertEquals(views.get(i).decay(), segment.decay());
            }
            assertEquals(c.parameterCount(), offset);
            assertEquals("wte.weight", views.get(0).name());
            assertEquals("head.weight", views.get(views.size() - 1).name());
            final TensorView w1 = views.stream().filter(v -> v.name().equals("blocks.1.moe.experts.3.w1.weight"))
                .findFirst().orElseThrow();
            assertArrayEquals(new int[] {c.expertHidden(), c.channels()}, w1.shape());
            assertTrue(views.stream().anyMatch(v -> v.name().equals("blocks.0.moe.shared.0.w2.bias")));
            assertTrue(views.stream().anyMatch(v -> v.name().equals("blocks.0.attn.qkv.weight") &&
                v.shape()[0] == 3 * c.channels()));
        }
    }

    @Test
    void shouldOverfitAFixedBatchWithPlainSgd() {
        final ModelConfig c = new ModelConfig(32, 16, 32, 2, 2, 4, 2, 64, 0, RouterScore.SOFTMAX, 0.01, 0.0, false,
            1e-3, 0.0, 0.02);
        try (MoeModel m = new MoeModel(c, 2, 2, Kernels.FAST, 21)) {
            final int[] tokens = GradCheck.randomTokens(c, 2, 22);
            final double[] losses = sgd(m, tokens, 60, 0.5f);
            assertTrue(losses[0] > 3.0, "starts near ln(32) = 3.47: " + losses[0]);
            assertTrue(losses[59] < 0.5 * losses[0], "after 60 SGD steps the batch is learned: " +
                java.util.Arrays.toString(losses));
        }
    }

    @Test
    @Timeout(180)
    void shouldAllocateNothingPerTrainingStep() {
        final ModelConfig c = new ModelConfig(64, 32, 64, 2, 4, 8, 2, 64, 1, RouterScore.SIGMOID, 0.01, 0.001, true,
            1e-3, 1.25, 0.02);
        try (MoeModel m = new MoeModel(c, 4, 2, Kernels.FAST, 5)) {
            final int[] tokens = GradCheck.randomTokens(c, 4, 6);
            AllocationProbe.assertAllocatesNothing(() -> step(m, tokens),
                AllocationProbe.callerAndWorkers(m.parallel().workerThreadIds()), 300, 120_000_000_000L);
        }
    }

    private static void step(final MoeModel m, final int[] tokens) {
        m.forward(tokens);
        m.backward();
        m.updateBalancingBias();
    }
}
