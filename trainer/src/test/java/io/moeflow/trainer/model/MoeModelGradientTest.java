package io.moeflow.trainer.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.moeflow.trainer.kernels.Kernels;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import java.util.stream.Stream;

/**
 * Whole-model finite-difference checks of the analytic gradient (every tensor, sampled elements), for both kernel
 * sets, over the variants that change the math: softmax and sigmoid routers, top-1 and top-2, a shared expert,
 * auxiliary and z losses, capacity dropping, and an expert that receives no token. Coordinates whose perturbation
 * changes the routing are skipped (see {@link GradCheck}); at most 35% may be (one token whose second and third
 * expert nearly tie flips under most perturbations upstream of its router), and at least 300 must be checked.
 */
class MoeModelGradientTest {
    static Stream<Arguments> variants() {
        final Stream.Builder<Arguments> b = Stream.builder();
        for (final Kernels k : Kernels.values()) {
            b.add(Arguments.of(k, "softmax top-2 aux+z", config(RouterScore.SOFTMAX, 2, 0, 0.0, false)));
            b.add(Arguments.of(k, "sigmoid top-2 shared expert", config(RouterScore.SIGMOID, 2, 1, 0.0, false)));
            b.add(Arguments.of(k, "softmax top-1", config(RouterScore.SOFTMAX, 1, 0, 0.0, false)));
            b.add(Arguments.of(k, "capacity factor 0.6 (drops)", config(RouterScore.SOFTMAX, 2, 0, 0.6, false)));
            b.add(Arguments.of(k, "zero-token expert", config(RouterScore.SIGMOID, 2, 1, 0.0, true)));
            b.add(Arguments.of(k, "top-3, two shared experts, capacity 1.0", config(RouterScore.SOFTMAX, 3, 2, 1.0,
                false)));
        }
        return b.build();
    }

    // V=16, T=16, C=32, L=2, H=2 (head dim 16: the fast attention path), E=4, F=16, init std 0.2 for O(1) gradients
    static ModelConfig config(final RouterScore score, final int topK, final int shared, final double capacity,
        final boolean biasBalancing) {
        return new ModelConfig(16, 16, 32, 2, 2, 4, topK, 16, shared, score, 0.05, 0.01, biasBalancing, 1e-3,
            capacity, 0.2);
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("variants")
    void shouldMatchFiniteDifferences(final Kernels kernels, final String name, final ModelConfig config) {
        try (MoeModel model = new MoeModel(config, 1, 1, kernels, 11)) {
            final int[] tokens = GradCheck.randomTokens(config, 1, 12);
            if (config.biasBalancing()) {
                // expert 2 can never win the selection: it gets no token in any layer
                for (int l = 0; l < config.layers(); l++) {
                    model.expertBias(l)[2] = -1e30f;
                }
            }
            final double loss = model.forward(tokens);
            assertTrue(Double.isFinite(loss), "loss " + loss);
            if (config.capacityFactor() > 0) {
                assertTrue(model.droppedTokens() > 0, "the capacity factor should drop some (token, expert) pairs");
            }
            if (config.biasBalancing()) {
                for (int l = 0; l < config.layers(); l++) {
                    assertEquals(0, model.expertLoad()[l * config.experts() + 2], "expert 2 load in layer " + l);
                }
            }
            final GradCheck.Result r = GradCheck.check(model, tokens, 1e-2, 12, 13);
            // first: a non-finite gradient anywhere makes maxRatio NaN, which fails here
            assertTrue(r.maxRatio() <= 1.0, name + ": gradient mismatch: " + r);
            assertTrue(r.skipped() <= 0.35 * (r.checked() + r.skipped()), name + ": too many routing flips: " + r);
            assertTrue(r.checked() > 300, name + ": too few coordinates checked: " + r);
        }
    }
}
