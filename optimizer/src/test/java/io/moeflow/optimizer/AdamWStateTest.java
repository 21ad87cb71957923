package io.moeflow.optimizer;

import static io.moeflow.optimizer.AdamWParallelTest.assertBitwiseEqual;
import static io.moeflow.optimizer.Rejections.assertRejected;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.management.ManagementFactory;
import java.util.ArrayList;
import java.util.List;

import org.junit.jupiter.api.Test;

/** The optimizer state (step, exp_avg, exp_avg_sq): checkpoint round trip, validation, allocation. */
class AdamWStateTest {

    private static final AdamWConfig CONFIG = AdamWConfig.defaults();
    private static final LrSchedule SCHEDULE = LrSchedule.warmupCosine(1e-3, 3, 12, 1e-4);

    @Test
    void shouldResumeBitwiseFromRestoredState() {
        final RandomSlab slab = new RandomSlab(5L, 9, 400);
        final List<float[]> grads = new ArrayList<>();
        for (int step = 0; step < 12; step++) {
            grads.add(slab.nextGrads());
        }
        final AdamW uninterrupted = new AdamW(CONFIG, slab.segments);
        final float[] params = slab.params();
        float[] savedParams = null;
        float[] savedExpAvg = null;
        float[] savedExpAvgSq = null;
        long savedStep = -1;
        for (int step = 0; step < 12; step++) {
            if (step == 7) {       // "checkpoint": copies, as the checkpoint writer would take them
                savedParams = params.clone();
                savedExpAvg = uninterrupted.expAvg().clone();
                savedExpAvgSq = uninterrupted.expAvgSq().clone();
                savedStep = uninterrupted.stepCount();
            }
            final float[] g = grads.get(step).clone();
            uninterrupted.clipGradNorm(g);
            uninterrupted.step(params, g, SCHEDULE.lr(step));
        }

        final AdamW resumed = new AdamW(CONFIG, slab.segments);
        resumed.restore(savedStep, savedExpAvg, savedExpAvgSq);
        assertEquals(7, resumed.stepCount());
        assertNotSame(savedExpAvg, resumed.expAvg(), "restore copies in");
        for (int step = (int) resumed.stepCount(); step < 12; step++) {
            final float[] g = grads.get(step).clone();
            resumed.clipGradNorm(g);
            resumed.step(savedParams, g, SCHEDULE.lr(step));
        }

        assertBitwiseEqual(params, savedParams, "params");
        assertBitwiseEqual(uninterrupted.expAvg(), resumed.expAvg(), AdamW.STATE_EXP_AVG);
        assertBitwiseEqual(uninterrupted.expAvgSq(), resumed.expAvgSq(), AdamW.STATE_EXP_AVG_SQ);
        assertEquals(12, resumed.stepCount());
    }

    @Test
    void shouldUsePyTorchStateNames() {
        assertEquals("exp_avg", AdamW.STATE_EXP_AVG);
        assertEquals("exp_avg_sq", AdamW.STATE_EXP_AVG_SQ);
        assertEquals("step", AdamW.STATE_STEP);
    }

    @Test
    void shouldRejectStateOfTheWrongShapeOrWithImpossibleValues() {
        final AdamW adamw = new AdamW(CONFIG, List.of(new ParamSegment("w", 0, 4, true)));
        final float[] four = new float[4];
        assertRejected("step=-1", () -> adamw.restore(-1, four, four));
        assertRejected("exp_avg.length=5 must equal the slab length 4", () -> adamw.restore(3, new float[5], four));
        assertRejected("exp_avg_sq.length=null", () -> adamw.restore(3, four, null));
        assertRejected("exp_avg[2]=NaN", () -> adamw.restore(3, new float[] {0, 0, Float.NaN, 0}, four));
        assertRejected("exp_avg_sq[1]=-1.0", () -> adamw.restore(3, four, new float[] {0, -1, 0, 0}));
        assertEquals(0, adamw.stepCount(), "a rejected restore changes nothing");
    }

    @Test
    void shouldRequireBeginStepAfterRestore() {
        final AdamW adamw = new AdamW(CONFIG, List.of(new ParamSegment("w", 0, 4, true)));
        adamw.beginStep(1e-3);
        adamw.restore(5, new float[4], new float[4]);
        assertThrows(IllegalStateException.class, () -> adamw.updateRange(new float[4], new float[4], 0, 4),
                "the step constants belong to the state before restore");
    }

    @Test
    void shouldAllocateNothingPerStepOnceCompiled() {
        final com.sun.management.ThreadMXBean threads =
                (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        final RandomSlab slab = new RandomSlab(13L, 8, 2000);
        final AdamW adamw = new AdamW(CONFIG, slab.segments);
        final float[] params = slab.params();
        final float[] grads = slab.nextGrads();
        final long thread = Thread.currentThread().getId();
        // Warm-up lets C2 compile the step (escape analysis, inlining); the JIT works in the background,
        // so measure a few rounds and pass on the first that allocates nothing.
        long bytes = -1;
        for (int round = 0; round < 20 && bytes != 0; round++) {
            for (int i = 0; i < 2000; i++) {
                adamw.clipGradNorm(grads);
                adamw.step(params, grads, 1e-6);
            }
            final long before = threads.getThreadAllocatedBytes(thread);
            for (int i = 0; i < 100; i++) {
                adamw.clipGradNorm(grads);
                adamw.step(params, grads, 1e-6);
            }
            bytes = threads.getThreadAllocatedBytes(thread) - before;
        }
        assertTrue(bytes == 0, "100 steps after warm-up allocated " + bytes + " bytes");
    }
}
