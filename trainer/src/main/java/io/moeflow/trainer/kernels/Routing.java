package io.moeflow.trainer.kernels;

/**
 * Top-k selection shared by the reference and fast router kernels (a few comparisons per token; nothing to vectorise).
 */
public final class Routing {
    private Routing() {
    }

    /**
     * Writes the {@code topK} experts with the largest {@code scores[e] + bias[e]} (bias may be null) into
     * {@code selected[selectedOff..+topK)}, best first; ties go to the lower expert index, and a NaN score (score plus
     * bias) never wins over a number, wherever it stands, and is chosen only when no number is left (then the lowest
     * index), so the choice is deterministic.
     *
     * @param scores     scores of one token, at scoresOff, E of them
     * @param bias       selection bias [E] at biasOff, or null
     * @param biasOff    offset of the bias
     * @param experts    E
     * @param topK       K
     * @param selected   output expert indices
     * @param selectedOff offset of the output
     * @param scoresOff  offset of the scores
     */
    public static void selectTopK(final float[] scores, final int scoresOff, final float[] bias, final int biasOff,
        final int experts, final int topK, final int[] selected, final int selectedOff) {
        for (int k = 0; k < topK; k++) {
            int best = -1;
            float bestValue = 0f;
            for (int e = 0; e < experts; e++) {
                if (alreadySelected(selected, selectedOff, k, e)) {
                    continue;
                }
                final float v = bias == null ? scores[scoresOff + e] : scores[scoresOff + e] + bias[biasOff + e];
                // a NaN candidate never beats a number, whatever the order (a NaN first candidate is replaced by the
                // first number); it is chosen only when every remaining candidate is NaN
                if (best < 0 || v > bestValue || Float.isNaN(bestValue) && !Float.isNaN(v)) {
                    best = e;
                    bestValue = v;
                }
            }
            selected[selectedOff + k] = best;
        }
    }

    private static boolean alreadySelected(final int[] selected, final int off, final int count, final int e) {
        for (int j = 0; j < count; j++) {
            if (selected[off + j] == e) {
                return true;
            }
        }
        return false;
    }
}
