package io.moeflow.optimizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import java.util.List;
import java.util.stream.Stream;

import org.junit.jupiter.api.Named;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/** Global-norm clipping with PyTorch {@code clip_grad_norm_} semantics, for both implementations. */
class ClipGradNormTest {

    /** Two segments with a gap [3, 5) between them; gaps hold NaN in the gradients and must be ignored. */
    private static final List<ParamSegment> SEGMENTS = List.of(
            new ParamSegment("a", 0, 3, true),
            new ParamSegment("b", 5, 2, false));

    static Stream<Named<Implementations.Factory>> implementations() {
        return Implementations.both();
    }

    /** g = (1, 2, 2 | gap | 0, 4): squares 1 + 4 + 4 + 0 + 16 = 25, norm 5. */
    private static float[] gradsWithNormFive() {
        return new float[] {1.0f, 2.0f, 2.0f, Float.NaN, Float.NaN, 0.0f, 4.0f};
    }

    @ParameterizedTest
    @MethodSource("implementations")
    void shouldReturnNormBeforeClippingAndScaleToMaxNormWhenAbove(final Implementations.Factory factory) {
        final AdamWUpdater adamw = factory.apply(AdamWConfig.defaults().withMaxGradNorm(2.0), SEGMENTS);
        final float[] grads = gradsWithNormFive();

        final double norm = adamw.clipGradNorm(grads);

        assertEquals(5.0, norm, 1e-12);
        final double coef = 2.0 / (5.0 + 1e-6);          // PyTorch: max_norm / (total_norm + 1e-6)
        assertArrayEquals(new float[] {(float) coef, (float) (2 * coef), (float) (2 * coef), Float.NaN, Float.NaN,
            0.0f, (float) (4 * coef)}, grads, 1e-6f);
        final double after = Math.sqrt(AdamW.sumOfSquares(grads, 0, 3) + AdamW.sumOfSquares(grads, 5, 7));
        assertEquals(2.0, after, 1e-5, "norm after clipping is max_norm (less the 1e-6 guard)");
        assertTrue(after < 2.0, "PyTorch's 1e-6 keeps the clipped norm just below max_norm: " + after);
    }

    @ParameterizedTest
    @MethodSource("implementations")
    void shouldLeaveGradientsBitwiseUnchangedWhenNormIsBelowMax(final Implementations.Factory factory) {
        final AdamWUpdater adamw = factory.apply(AdamWConfig.defaults().withMaxGradNorm(5.5), SEGMENTS);
        final float[] grads = gradsWithNormFive();

        assertEquals(5.0, adamw.clipGradNorm(grads), 1e-12);

        assertArrayEquals(gradsWithNormFive(), grads);
    }

    @ParameterizedTest
    @MethodSource("implementations")
    void shouldReportNormButNeverScaleWhenClippingIsDisabled(final Implementations.Factory factory) {
        final AdamWUpdater adamw = factory.apply(AdamWConfig.defaults().withMaxGradNorm(0.0), SEGMENTS);
        final float[] grads = gradsWithNormFive();

        assertEquals(5.0, adamw.clipGradNorm(grads), 1e-12);

        assertArrayEquals(gradsWithNormFive(), grads);
    }

    @ParameterizedTest
    @MethodSource("implementations")
    void shouldReturnNonFiniteNormAndLeaveGradientsAloneWhenAGradientIsNotFinite(
            final Implementations.Factory factory) {
        final AdamWUpdater adamw = factory.apply(AdamWConfig.defaults(), SEGMENTS);
        final float[] withNaN = gradsWithNormFive();
        withNaN[6] = Float.NaN;
        final float[] withInfinity = gradsWithNormFive();
        withInfinity[0] = Float.POSITIVE_INFINITY;

        assertTrue(Double.isNaN(adamw.clipGradNorm(withNaN)));
        assertEquals(Double.POSITIVE_INFINITY, adamw.clipGradNorm(withInfinity));

        final float[] expectedNaN = gradsWithNormFive();
        expectedNaN[6] = Float.NaN;
        assertArrayEquals(expectedNaN, withNaN);
        final float[] expectedInfinity = gradsWithNormFive();
        expectedInfinity[0] = Float.POSITIVE_INFINITY;
        assertArrayEquals(expectedInfinity, withInfinity);
    }

    @Test
    void shouldScaleByExactlyTheFloatOfTheClipCoefficient() {
        final AdamW adamw = new AdamW(AdamWConfig.defaults(), SEGMENTS);
        final float[] grads = gradsWithNormFive();

        adamw.clipGradNorm(grads);

        final float factor = (float) (1.0 / (5.0 + AdamWConfig.CLIP_NORM_EPS));
        assertEquals(factor, (float) AdamWConfig.defaults().clipCoefficient(5.0));
        final float[] expected = gradsWithNormFive();
        for (final int i : new int[] {0, 1, 2, 5, 6}) {
            expected[i] *= factor;
        }
        assertArrayEquals(expected, grads);
    }

    @Test
    void shouldGiveClipCoefficientOneWhenDisabledBelowThresholdOrNotFinite() {
        final AdamWConfig config = AdamWConfig.defaults();             // maxGradNorm = 1
        assertEquals(1.0, config.clipCoefficient(0.0));
        assertEquals(1.0, config.clipCoefficient(0.5));
        assertEquals(1.0, config.clipCoefficient(Double.NaN));
        assertEquals(1.0, config.clipCoefficient(Double.POSITIVE_INFINITY));
        assertEquals(1.0, config.withMaxGradNorm(-1.0).clipCoefficient(100.0));
        assertEquals(1.0 / (4.0 + 1e-6), config.clipCoefficient(4.0));
    }

    @Test
    void shouldSumSquaresInDoubleSoSmallTermsAreNotLostNextToLargeOnes() {
        // eight squares of 1e8 (one per accumulator), then 1000 squares of 1: in float, 1e8 + 1 == 1e8
        // (the float spacing at 1e8 is 8), so a float sum would lose all 1000; a double sum is exact
        final float[] x = new float[1008];
        Arrays.fill(x, 1.0f);
        Arrays.fill(x, 0, 8, 1e4f);

        assertEquals(8e8 + 1000, AdamW.sumOfSquares(x, 0, x.length));
        assertEquals(7.0, AdamW.sumOfSquares(x, 10, 17));
    }
}
