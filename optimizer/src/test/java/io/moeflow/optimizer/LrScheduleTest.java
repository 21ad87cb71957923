package io.moeflow.optimizer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static io.moeflow.optimizer.Rejections.assertRejected;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** Learning-rate schedules at their edges: step 0, end of warmup, total, past total. */
class LrScheduleTest {

    private static final double EXACT = 1e-15;

    @Test
    void shouldReturnTheSameRateAtEveryStepForConstant() {
        final LrSchedule constant = LrSchedule.constant(3e-4);
        assertEquals(3e-4, constant.lr(0));
        assertEquals(3e-4, constant.lr(1_000_000_000_000L));
    }

    @Test
    void shouldRampLinearlyFromPeakOverWarmupToPeakAtLastWarmupStep() {
        final LrSchedule schedule = LrSchedule.warmupCosine(1e-3, 10, 110, 1e-4);
        assertEquals(1e-4, schedule.lr(0), EXACT, "step 0: peak * 1 / warmup");
        assertEquals(5e-4, schedule.lr(4), EXACT, "step 4: peak * 5 / warmup");
        assertEquals(1e-3, schedule.lr(9), EXACT, "last warmup step reaches the peak");
        assertEquals(1e-3, schedule.lr(10), EXACT, "first decay step: cos(0) = 1, still the peak");
    }

    @Test
    void shouldDecayAlongCosineToFloorAtTotalAndHoldItPastTotal() {
        final LrSchedule schedule = LrSchedule.warmupCosine(1e-3, 10, 110, 1e-4);
        // progress = (step - 10) / 100
        assertEquals(1e-4 + 0.9e-3 * 0.5 * (1 + Math.cos(Math.PI * 0.25)), schedule.lr(35), EXACT);
        assertEquals(5.5e-4, schedule.lr(60), EXACT, "half way: (peak + min) / 2");
        assertEquals(1e-4 + 0.9e-3 * 0.5 * (1 + Math.cos(Math.PI * 0.99)), schedule.lr(109), EXACT);
        assertEquals(1e-4, schedule.lr(110), EXACT, "total steps: the floor");
        assertEquals(1e-4, schedule.lr(111), EXACT, "past total: held at the floor");
        assertEquals(1e-4, schedule.lr(Long.MAX_VALUE), EXACT);
    }

    @Test
    void shouldDecreaseMonotonicallyAfterWarmup() {
        final LrSchedule schedule = LrSchedule.warmupCosine(6e-4, 100, 5000, 6e-5);
        for (long step = 100; step < 5100; step++) {
            assertTrue(schedule.lr(step + 1) <= schedule.lr(step), "lr rose at step " + step);
        }
    }

    @Test
    void shouldStartAtPeakWithoutWarmupAndStopAtFloorWhenWarmupFillsTheRun() {
        final LrSchedule noWarmup = LrSchedule.warmupCosine(2e-3, 0, 100, 0.0);
        assertEquals(2e-3, noWarmup.lr(0), EXACT);
        assertEquals(0.0, noWarmup.lr(100), EXACT);

        final LrSchedule allWarmup = LrSchedule.warmupCosine(2e-3, 100, 100, 2e-4);
        assertEquals(2e-3, allWarmup.lr(99), EXACT);
        assertEquals(2e-4, allWarmup.lr(100), EXACT);
    }

    @Test
    void shouldScaleAnyScheduleByLinearWarmup() {
        // a curriculum-style stage rate: 1e-4 for 50 steps, then 5e-5
        final LrSchedule stageLr = step -> step < 50 ? 1e-4 : 5e-5;
        final LrSchedule warmed = LrSchedule.withWarmup(stageLr, 4);
        assertEquals(0.25e-4, warmed.lr(0), EXACT);
        assertEquals(0.75e-4, warmed.lr(2), EXACT);
        assertEquals(1e-4, warmed.lr(3), EXACT);
        assertEquals(5e-5, warmed.lr(50), EXACT);
        assertEquals(1e-4, LrSchedule.withWarmup(stageLr, 0).lr(0), EXACT);
    }

    @Test
    void shouldRejectNegativeStepsAndBadParametersWithNameAndValue() {
        assertRejected("step=-1", () -> LrSchedule.constant(1e-3).lr(-1));
        assertRejected("step=-1", () -> LrSchedule.warmupCosine(1e-3, 0, 10, 0).lr(-1));
        assertRejected("step=-5", () -> LrSchedule.withWarmup(s -> 1e-3, 3).lr(-5));
        assertRejected("lr=-0.1", () -> LrSchedule.constant(-0.1));
        assertRejected("lr=NaN", () -> LrSchedule.constant(Double.NaN));
        assertRejected("peakLr=0.0", () -> LrSchedule.warmupCosine(0.0, 0, 10, 0));
        assertRejected("totalSteps=0", () -> LrSchedule.warmupCosine(1e-3, 0, 0, 0));
        assertRejected("warmupSteps=11", () -> LrSchedule.warmupCosine(1e-3, 11, 10, 0));
        assertRejected("warmupSteps=-1", () -> LrSchedule.warmupCosine(1e-3, -1, 10, 0));
        assertRejected("minLr=0.002", () -> LrSchedule.warmupCosine(1e-3, 0, 10, 2e-3));
        assertRejected("minLr=-1.0", () -> LrSchedule.warmupCosine(1e-3, 0, 10, -1.0));
        assertRejected("warmupSteps=-2", () -> LrSchedule.withWarmup(LrSchedule.constant(1e-3), -2));
    }
}
