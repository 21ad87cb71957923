package io.moeflow.trainer.kernels;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import org.junit.jupiter.api.Test;

/** {@link Routing#selectTopK}: best first, ties to the lower index, NaN never preferred over a number. */
class RoutingTest {
    private static int[] top(final float[] scores, final float[] bias, final int k) {
        final int[] selected = new int[k];
        Routing.selectTopK(scores, 0, bias, 0, scores.length, k, selected, 0);
        return selected;
    }

    @Test
    void shouldPickTheLargestFirstAndBreakTiesTowardTheLowerIndex() {
        assertArrayEquals(new int[] {2, 0}, top(new float[] {0.5f, 0.1f, 0.9f, 0.5f}, null, 2));
    }

    @Test
    void shouldNotPreferANaNScoreEvenWhenItIsTheFirstCandidate() {
        assertArrayEquals(new int[] {1, 2}, top(new float[] {Float.NaN, 0.3f, 0.2f}, null, 2));
        assertArrayEquals(new int[] {2, 0}, top(new float[] {0.1f, Float.NaN, 0.7f}, new float[] {0f, 0f, -0.1f}, 2));
    }

    @Test
    void shouldNotPreferAScoreWhoseBiasIsNaN() {
        assertArrayEquals(new int[] {1}, top(new float[] {0.9f, 0.1f}, new float[] {Float.NaN, 0f}, 1));
    }

    @Test
    void shouldChooseNaNsOnlyWhenNoNumberIsLeftLowestIndexFirst() {
        assertArrayEquals(new int[] {2, 0, 1}, top(new float[] {Float.NaN, Float.NaN, -5f}, null, 3));
    }
}
