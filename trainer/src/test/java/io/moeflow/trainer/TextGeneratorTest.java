package io.moeflow.trainer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.moeflow.trainer.model.MoeModel;
import io.moeflow.trainer.kernels.Kernels;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

@Timeout(60)
class TextGeneratorTest {
    @Test
    void shouldBeReproducibleForASeedAndVaryAcrossSeeds() {
        try (MoeModel model = new MoeModel(TinyRuns.tinyModel(16), 1, 1, Kernels.FAST, 5)) {
            final String a = new TextGenerator(model, 1).generate("ab", 40, 1.0, 0, false);
            final String b = new TextGenerator(model, 1).generate("ab", 40, 1.0, 0, false);
            final String c = new TextGenerator(model, 2).generate("ab", 40, 1.0, 0, false);
            assertEquals(a, b);
            assertNotEquals(a, c, "an untrained model's distribution is nearly uniform: two seeds must differ");
        }
    }

    @Test
    void shouldMatchGreedyDecodingWhenOnlyTheTopTokenIsAllowed() {
        try (MoeModel model = new MoeModel(TinyRuns.tinyModel(16), 1, 1, Kernels.FAST, 5)) {
            final String greedy = new TextGenerator(model, 1).generate("hello", 30, 0, 0, false);
            final String topOne = new TextGenerator(model, 9).generate("hello", 30, 0.7, 1, false);
            assertEquals(greedy, topOne);
        }
    }

    @Test
    void shouldSlideTheContextWindowPastTheSequenceLength() {
        try (MoeModel model = new MoeModel(TinyRuns.tinyModel(16), 1, 1, Kernels.FAST, 5)) {
            // 60 new bytes on a 16-token context: the window must slide instead of failing.
            final int[] tokens = new TextGenerator(model, 3).generateTokens("x".repeat(20), 60, 0, 0, false);
            assertEquals(60, tokens.length);
        }
    }

    @Test
    void shouldRejectBadSamplingSettings() {
        try (MoeModel model = new MoeModel(TinyRuns.tinyModel(16), 1, 1, Kernels.FAST, 5)) {
            final TextGenerator g = new TextGenerator(model, 1);
            assertThrows(IllegalArgumentException.class, () -> g.generate("a", 3, -1, 0, false));
            assertThrows(IllegalArgumentException.class, () -> g.generate("a", 3, 1, -2, false));
        }
    }
}
