package io.moeflow.curriculum;

import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class PacingTest {

    @Test
    void shouldFollowFixedLinearFormulaAtEdges() {
        // d = floor(step/100 * (100-10) + 10), clamped to 100
        assertEquals(10, Pacing.fixedRoot(0, 100, 10, 100, 1, 1));
        assertEquals(10, Pacing.fixedRoot(1, 100, 10, 100, 1, 1)); // 10.9 floors to 10
        assertEquals(11, Pacing.fixedRoot(2, 100, 10, 100, 1, 1)); // 11.8
        assertEquals(55, Pacing.fixedRoot(50, 100, 10, 100, 1, 1));
        assertEquals(99, Pacing.fixedRoot(99, 100, 10, 100, 1, 1)); // 99.1
        assertEquals(100, Pacing.fixedRoot(100, 100, 10, 100, 1, 1));
        assertEquals(100, Pacing.fixedRoot(1_000_000, 100, 10, 100, 1, 1)); // past the end: clamped to max
    }

    @Test
    void shouldRoundDownToMultiplesOfDifficultyStepFromZeroLikeDeepSpeed() {
        // min 10 is not a multiple of 8: step 1 gives floor(10.9)=10, 10 - 10 % 8 = 8, below min (DeepSpeed does this).
        assertEquals(8, Pacing.fixedRoot(1, 100, 10, 100, 8, 1));
        assertEquals(16, Pacing.fixedRoot(8, 100, 10, 100, 8, 1)); // floor(17.2) = 17 -> 16
        // at step = total the value is exactly 100, and 100 - 100 % 8 = 96: the max is reached only past the end
        assertEquals(96, Pacing.fixedRoot(100, 100, 10, 100, 8, 1));
        assertEquals(96, Pacing.fixedRoot(104, 100, 10, 100, 8, 1)); // floor(103.6) = 103 -> 96
        assertEquals(100, Pacing.fixedRoot(105, 100, 10, 100, 8, 1)); // floor(104.5) = 104 -> 104 -> min(104, 100)
    }

    @Test
    void shouldMatchExactIntegerLinearPacingEverywhere() {
        // floor(s*R/T + min) computed in integers; the double formula must agree at every step for these sizes.
        final int min = 3;
        final int max = 97;
        final long total = 250;
        for (long s = 0; s <= 3 * total; s++) {
            final long exact = Math.min(s * (max - min) / total + min, max);
            assertEquals(exact, Pacing.fixedRoot(s, total, min, max, 1, 1), "step " + s);
        }
    }

    @Test
    void shouldFollowFixedRootFormula() {
        // root 2: d = floor(sqrt(s/T) * 100); integer reference: isqrt(s * 100^2 / T) for s <= T
        assertEquals(50, Pacing.fixedRoot(25, 100, 0, 100, 1, 2));
        assertEquals(70, Pacing.fixedRoot(49, 100, 0, 100, 1, 2));
        assertEquals(10, Pacing.fixedRoot(1, 100, 0, 100, 1, 2));
        int mismatches = 0;
        for (long s = 0; s <= 400; s++) {
            final long exact = Math.min(isqrt(s * 100 * 100 / 400), 100);
            if (exact != Pacing.fixedRoot(s, 400, 0, 100, 1, 2)) {
                mismatches++;
            }
        }
        assertEquals(0, mismatches);
        // root 3 grows faster early than linear and root 2
        assertTrue(Pacing.fixedRoot(10, 1000, 0, 100, 1, 3) > Pacing.fixedRoot(10, 1000, 0, 100, 1, 2));
        assertEquals(21, Pacing.fixedRoot(10, 1000, 0, 100, 1, 3)); // cbrt(0.01) = 0.2154
    }

    @Test
    void shouldFollowFixedDiscreteScheduleLikeDeepSpeedDocs() {
        final int[] d = {1, 2, 3};
        final long[] m = {5, 10};
        for (long s = 1; s <= 5; s++) {
            assertEquals(1, Pacing.fixedDiscrete(s, d, m), "step " + s);
        }
        for (long s = 6; s <= 10; s++) {
            assertEquals(2, Pacing.fixedDiscrete(s, d, m), "step " + s);
        }
        assertEquals(3, Pacing.fixedDiscrete(11, d, m));
        assertEquals(3, Pacing.fixedDiscrete(1_000_000, d, m));
    }

    @Test
    void shouldDrawOnlySamplesAtOrBelowThePacedDifficulty() {
        final Dataset data = TestData.graded(1001);
        final CurriculumConfig config = CurriculumConfig.defaults(CurriculumConfig.Kind.FIXED_LINEAR, 100)
                .withPacing(10, 100, 40, 5, 1);
        final CurriculumScheduler scheduler = new CurriculumScheduler(config, data, 4, 32);
        final int[] tokens = new int[4 * 33];
        final StepPlan plan = new StepPlan();
        double previous = 0;
        for (int step = 0; step < 60; step++) {
            scheduler.next(tokens, plan);
            final int expected = Pacing.fixedRoot(step + 1, 40, 10, 100, 5, 1);
            assertEquals(expected / 100.0, plan.maxDifficulty(), 0.0, "step " + step);
            assertEquals(expected, scheduler.pacingDifficulty(step + 1));
            assertTrue(plan.maxDifficulty() >= previous, "pacing never goes back");
            previous = plan.maxDifficulty();
            assertTrue(Double.isNaN(plan.lr()), "pacing sets no lr");
            for (final double d : TestData.completeSampleDifficulties(tokens, 4, 33)) {
                assertTrue(d <= plan.maxDifficulty() + 1e-4, "step " + step + ": sample " + d + " > " + plan.maxDifficulty());
            }
        }
        assertEquals(1.0, plan.maxDifficulty());
        assertEquals("fixed_linear<=1.00", plan.stageName());
    }

    @Test
    void shouldReportDiscreteLevelAsStageIndex() {
        final Dataset data = TestData.graded(101);
        final CurriculumConfig config = CurriculumConfig.defaults(CurriculumConfig.Kind.FIXED_DISCRETE, 10)
                .withDiscrete(List.of(20, 50, 100), List.of(3L, 6L));
        final CurriculumScheduler scheduler = new CurriculumScheduler(config, data, 2, 16);
        final int[] tokens = new int[2 * 17];
        final StepPlan plan = new StepPlan();
        final int[] expectedStage = {0, 0, 0, 1, 1, 1, 2, 2};
        final double[] expectedMax = {0.2, 0.2, 0.2, 0.5, 0.5, 0.5, 1.0, 1.0};
        for (int i = 0; i < expectedStage.length; i++) {
            scheduler.next(tokens, plan);
            assertEquals(expectedStage[i], plan.stageIndex(), "step " + i);
            assertEquals(expectedMax[i], plan.maxDifficulty(), 0.0, "step " + i);
        }
    }

    @Test
    void shouldRejectPacingWhoseFirstStepHasNoSamples() {
        final Dataset hard = Dataset.of("hard", List.of(new Sample("a", 0.5, "x"), new Sample("b", 0.9, "x")));
        final CurriculumConfig config = CurriculumConfig.defaults(CurriculumConfig.Kind.FIXED_LINEAR, 100);
        final IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> new CurriculumScheduler(config, hard, 1, 8));
        assertTrue(e.getMessage().contains("no sample"), e.getMessage());
        assertTrue(e.getMessage().contains("easiest: 0.5"), e.getMessage());
    }

    private static long isqrt(final long x) {
        long r = (long) Math.sqrt((double) x);
        while (r * r > x) {
            r--;
        }
        while ((r + 1) * (r + 1) <= x) {
            r++;
        }
        return r;
    }
}
