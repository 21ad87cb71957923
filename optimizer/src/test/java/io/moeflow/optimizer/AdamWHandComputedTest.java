package io.moeflow.optimizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.List;
import java.util.stream.Stream;

import org.junit.jupiter.api.Named;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * AdamW steps checked against values worked out by hand from the published update rule
 * (PyTorch {@code torch.optim.AdamW} docs; Loshchilov and Hutter 2019, Algorithm 2), for both the fast
 * and the reference implementation. The derivations are in the comments; the constants are their
 * results, not outputs of the code under test.
 *
 * <p>Shared setup: beta1 = 0.9, beta2 = 0.95, eps = 1e-8, weight decay 0.1, lr = 0.01, so a decayed
 * parameter is first multiplied by 1 - 0.01 * 0.1 = 0.999.
 */
class AdamWHandComputedTest {

    /** Float32 arithmetic against exact decimal values of order 1: a few float ulps. */
    private static final double HAND_TOLERANCE = 1e-6;

    private static final double LR = 0.01;
    private static final AdamWConfig NO_CLIP = new AdamWConfig(0.9, 0.95, 1e-8, 0.1, 0.0);

    static Stream<Named<Implementations.Factory>> implementations() {
        return Implementations.both();
    }

    /**
     * At step 1, m = (1 - beta1) g and v = (1 - beta2) g^2, so the bias corrections give m_hat = g and
     * v_hat = g^2, and the update is lr * g / (|g| + eps) = lr * sign(g) (eps is invisible in float32
     * next to |g| >= 0.25). A zero gradient gives m = v = 0 and an update of 0 / (0 + eps) = 0.
     */
    @ParameterizedTest
    @MethodSource("implementations")
    void shouldMoveEachParameterByLrTimesSignOfGradientOnFirstStep(final Implementations.Factory factory) {
        final AdamWUpdater adamw = factory.apply(NO_CLIP, List.of(
                new ParamSegment("bias", 0, 4, false),
                new ParamSegment("weight", 4, 4, true)));
        final float[] params = {1.0f, -2.0f, 0.5f, 3.0f, 1.0f, -2.0f, 0.5f, 3.0f};
        final float[] grads = {0.5f, -0.25f, 2.0f, 0.0f, 0.5f, -0.25f, 2.0f, 0.0f};

        adamw.step(params, grads, LR);

        final float[] expected = {
            // no decay: p - 0.01 sign(g)
            0.99f, -1.99f, 0.49f, 3.0f,
            // decay: 0.999 p - 0.01 sign(g)
            0.989f, -1.988f, 0.4895f, 2.997f};
        assertArrayEquals(expected, params, (float) HAND_TOLERANCE);
        // m = 0.1 g, v = 0.05 g^2
        assertArrayEquals(new float[] {0.05f, -0.025f, 0.2f, 0.0f, 0.05f, -0.025f, 0.2f, 0.0f},
                adamw.expAvg(), (float) HAND_TOLERANCE);
        assertArrayEquals(new float[] {0.0125f, 0.003125f, 0.2f, 0.0f, 0.0125f, 0.003125f, 0.2f, 0.0f},
                adamw.expAvgSq(), (float) HAND_TOLERANCE);
        assertEquals(1, adamw.stepCount());
    }

    /**
     * Gradients alternating +1, -1, +1 (and +2, -2, +2 for the second parameter). Since |g| is constant,
     * v_hat = g^2 exactly and sqrt(v_hat) = |g|; only the first moment varies:
     * <pre>
     *   t=1: m = 0.1                      m_hat = 0.1 / 0.1   = 1
     *   t=2: m = 0.09 - 0.1 = -0.01       m_hat = -0.01 / 0.19 = -1/19
     *   t=3: m = -0.009 + 0.1 = 0.091     m_hat = 0.091 / 0.271
     *   v: 0.05, 0.0975, 0.142625 (times g^2), and 1 - 0.95^t is 0.05, 0.0975, 0.142625, so v_hat = g^2
     * </pre>
     * First parameter (p0 = 1, no decay): 0.99, 0.99 + 0.01/19 = 0.99052632, then minus 0.01 * 0.091 / 0.271
     * = 0.98716838. Second (p0 = -1, g doubled, decayed): -0.999 - 0.01 = -1.009, -1.009 * 0.999 + 0.01/19
     * = -1.00746468, -1.00746468 * 0.999 - 0.01 * 0.091 / 0.271 = -1.00981515.
     */
    @ParameterizedTest
    @MethodSource("implementations")
    void shouldFollowBiasCorrectedMomentsOverThreeStepsWithAndWithoutDecay(final Implementations.Factory factory) {
        final AdamWUpdater adamw = factory.apply(NO_CLIP, List.of(
                new ParamSegment("norm.gain", 0, 1, false),
                new ParamSegment("proj.weight", 1, 1, true)));
        final float[] params = {1.0f, -1.0f};
        final float[][] grads = {{1.0f, 2.0f}, {-1.0f, -2.0f}, {1.0f, 2.0f}};
        final double[][] expectedParams = {
            {0.99, -1.009},
            {0.99 + 0.01 / 19, -1.009 * 0.999 + 0.01 / 19},
            {0.99 + 0.01 / 19 - 0.01 * 0.091 / 0.271, (-1.009 * 0.999 + 0.01 / 19) * 0.999 - 0.01 * 0.091 / 0.271}};
        final double[] expectedM = {0.1, -0.01, 0.091};
        final double[] expectedV = {0.05, 0.0975, 0.142625};

        for (int t = 0; t < 3; t++) {
            adamw.step(params, grads[t], LR);
            assertEquals(expectedParams[t][0], params[0], HAND_TOLERANCE, "p[0] after step " + (t + 1));
            assertEquals(expectedParams[t][1], params[1], HAND_TOLERANCE, "p[1] after step " + (t + 1));
            assertEquals(expectedM[t], adamw.expAvg()[0], HAND_TOLERANCE, "m[0] after step " + (t + 1));
            assertEquals(2 * expectedM[t], adamw.expAvg()[1], HAND_TOLERANCE, "m[1] after step " + (t + 1));
            assertEquals(expectedV[t], adamw.expAvgSq()[0], HAND_TOLERANCE, "v[0] after step " + (t + 1));
            assertEquals(4 * expectedV[t], adamw.expAvgSq()[1], HAND_TOLERANCE, "v[1] after step " + (t + 1));
        }
        assertEquals(-1.00981515, params[1], HAND_TOLERANCE);
    }

    /**
     * Clipping then stepping. Step 1: g = (3, 4) has norm 5 > 1, so it is scaled by 1 / (5 + 1e-6), to
     * (0.6, 0.8); step 2: g = (0.3, 0.4), norm 0.5, left alone. For the first parameter (p0 = 1, no decay):
     * <pre>
     *   t=1: m = 0.06, v = 0.018, update = 0.01 sign(g)                        p = 0.99
     *   t=2: m = 0.054 + 0.03 = 0.084, v = 0.0171 + 0.0045 = 0.0216
     *        m_hat = 0.084 / 0.19 = 0.4421053, sqrt(v_hat) = sqrt(0.0216 / 0.0975) = 0.4706787
     *        p = 0.99 - 0.01 * 0.4421053 / 0.4706787 = 0.9806071
     * </pre>
     * Without the clip, step 2 would see m = 0.3, v = 0.432 and land at 0.9824988: the difference shows
     * the clip changed the moments. The second parameter (p0 = -1, decayed) works the same way with
     * g = 0.8 then 0.4: m = 0.112, v = 0.0384, p = -1.009 * 0.999 - 0.01 * 0.5894737 / 0.6275716 = -1.0173839.
     */
    @ParameterizedTest
    @MethodSource("implementations")
    void shouldStepOnClippedGradientsWhenNormExceedsMax(final Implementations.Factory factory) {
        final AdamWUpdater adamw = factory.apply(NO_CLIP.withMaxGradNorm(1.0), List.of(
                new ParamSegment("bias", 0, 1, false),
                new ParamSegment("weight", 1, 1, true)));
        final float[] params = {1.0f, -1.0f};

        final float[] step1 = {3.0f, 4.0f};
        assertEquals(5.0, adamw.clipGradNorm(step1), 1e-12, "norm before clipping");
        assertArrayEquals(new float[] {0.6f, 0.8f}, step1, (float) HAND_TOLERANCE);
        adamw.step(params, step1, LR);

        final float[] step2 = {0.3f, 0.4f};
        assertEquals(0.5, adamw.clipGradNorm(step2), 1e-7, "norm before clipping");
        assertArrayEquals(new float[] {0.3f, 0.4f}, step2, "below the threshold: untouched");
        adamw.step(params, step2, LR);

        assertEquals(0.9806071, params[0], HAND_TOLERANCE);
        assertEquals(-1.0173839, params[1], HAND_TOLERANCE);
        assertEquals(0.084, adamw.expAvg()[0], HAND_TOLERANCE);
        assertEquals(0.0216, adamw.expAvgSq()[0], HAND_TOLERANCE);
    }

    /**
     * An expert that never receives a token has g = 0 at every step: m = v = 0, the Adam update is
     * 0 / (0 + eps) = 0, and only the decay acts, p_t = p_0 * 0.999^t.
     */
    @ParameterizedTest
    @MethodSource("implementations")
    void shouldOnlyDecayParametersWhoseGradientIsAlwaysZero(final Implementations.Factory factory) {
        final AdamWUpdater adamw = factory.apply(NO_CLIP, List.of(
                new ParamSegment("expert.7.weight", 0, 3, true),
                new ParamSegment("expert.7.bias", 3, 2, false)));
        final float[] params = {1.0f, -0.5f, 2.0f, 0.25f, -4.0f};
        final float[] zero = new float[5];

        for (int t = 0; t < 10; t++) {
            adamw.step(params, zero, LR);
        }

        final double decay10 = Math.pow(0.999, 10);
        assertArrayEquals(new float[] {(float) decay10, (float) (-0.5 * decay10), (float) (2.0 * decay10),
            0.25f, -4.0f}, params, (float) HAND_TOLERANCE);
        assertArrayEquals(new float[5], adamw.expAvg());
        assertArrayEquals(new float[5], adamw.expAvgSq());
    }
}
