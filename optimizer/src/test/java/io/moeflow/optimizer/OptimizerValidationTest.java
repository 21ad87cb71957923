package io.moeflow.optimizer;

import static io.moeflow.optimizer.Rejections.assertRejected;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import java.util.List;

import org.junit.jupiter.api.Test;

/** Bad configuration, segments and arguments fail with one clear IllegalArgumentException naming name=value. */
class OptimizerValidationTest {

    private static final List<ParamSegment> TWO = List.of(
            new ParamSegment("w", 0, 6, true), new ParamSegment("b", 8, 2, false));

    @Test
    void shouldHaveDocumentedDefaults() {
        assertEquals(new AdamWConfig(0.9, 0.95, 1e-8, 0.1, 1.0), AdamWConfig.defaults());
    }

    @Test
    void shouldRejectBadConfigWithNameAndValue() {
        assertRejected("beta1=1.0", () -> new AdamWConfig(1.0, 0.95, 1e-8, 0.1, 1.0));
        assertRejected("beta1=-0.1", () -> new AdamWConfig(-0.1, 0.95, 1e-8, 0.1, 1.0));
        assertRejected("beta1=NaN", () -> new AdamWConfig(Double.NaN, 0.95, 1e-8, 0.1, 1.0));
        assertRejected("beta2=1.5", () -> new AdamWConfig(0.9, 1.5, 1e-8, 0.1, 1.0));
        assertRejected("eps=0.0", () -> new AdamWConfig(0.9, 0.95, 0.0, 0.1, 1.0));
        assertRejected("eps=Infinity", () -> new AdamWConfig(0.9, 0.95, Double.POSITIVE_INFINITY, 0.1, 1.0));
        assertRejected("weightDecay=-0.01", () -> new AdamWConfig(0.9, 0.95, 1e-8, -0.01, 1.0));
        assertRejected("weightDecay=NaN", () -> new AdamWConfig(0.9, 0.95, 1e-8, Double.NaN, 1.0));
        assertRejected("maxGradNorm=NaN", () -> new AdamWConfig(0.9, 0.95, 1e-8, 0.1, Double.NaN));
        assertRejected("maxGradNorm=Infinity", () -> AdamWConfig.defaults().withMaxGradNorm(Double.POSITIVE_INFINITY));
    }

    @Test
    void shouldRejectBadSegmentsNamingTheSegment() {
        assertRejected("name=null", () -> new ParamSegment(null, 0, 1, true));
        assertRejected("name=' '", () -> new ParamSegment(" ", 0, 1, true));
        assertRejected("offset=-1", () -> new ParamSegment("w", -1, 1, true));
        assertRejected("length=-3", () -> new ParamSegment("w", 0, -3, true));
        assertRejected("exceeds the largest Java array", () -> new ParamSegment("w", Integer.MAX_VALUE, 1, true));
        assertRejected("segments=[]", () -> new AdamW(AdamWConfig.defaults(), List.of()));
        assertRejected("segments=null", () -> new AdamW(AdamWConfig.defaults(), null));
        assertRejected("segments[1]=null", () -> new AdamW(AdamWConfig.defaults(),
                Arrays.asList(new ParamSegment("w", 0, 4, true), null)));
        assertRejected("segments[1].name=w", () -> new AdamW(AdamWConfig.defaults(),
                List.of(new ParamSegment("w", 0, 4, true), new ParamSegment("w", 4, 4, true))));
        assertRejected("segment b [3, 5) overlaps segment a [0, 4)", () -> new AdamWReference(AdamWConfig.defaults(),
                List.of(new ParamSegment("b", 3, 2, false), new ParamSegment("a", 0, 4, true))));
    }

    @Test
    void shouldSizeTheSlabByTheFurthestSegmentAndKeepTheGivenOrder() {
        final AdamW adamw = new AdamW(AdamWConfig.defaults(), List.of(TWO.get(1), TWO.get(0)));
        assertEquals(10, adamw.slabLength());
        assertEquals(10, adamw.expAvg().length);
        assertEquals(10, adamw.expAvgSq().length);
        assertEquals(List.of(TWO.get(1), TWO.get(0)), adamw.segments());
    }

    @Test
    void shouldRejectShortArraysBadRangesAndBadLearningRates() {
        final AdamW adamw = new AdamW(AdamWConfig.defaults(), TWO);
        final float[] ok = new float[10];
        assertRejected("params.length=9", () -> adamw.step(new float[9], ok, 1e-3));
        assertRejected("grads.length=9", () -> adamw.step(ok, new float[9], 1e-3));
        assertRejected("grads=null", () -> adamw.clipGradNorm(null));
        assertRejected("lr=-0.001", () -> adamw.step(ok, ok, -1e-3));
        assertRejected("lr=NaN", () -> adamw.beginStep(Double.NaN));
        assertRejected("lr=Infinity", () -> new AdamWReference(AdamWConfig.defaults(), TWO)
                .step(ok, ok, Double.POSITIVE_INFINITY));
        assertEquals(0, adamw.stepCount(), "rejected steps do not count");

        adamw.beginStep(1e-3);
        assertRejected("from=4 to=3", () -> adamw.updateRange(ok, ok, 4, 3));
        assertRejected("from=-1 to=3", () -> adamw.updateRange(ok, ok, -1, 3));
        assertRejected("from=0 to=11", () -> adamw.updateRange(ok, ok, 0, 11));
        assertRejected("from=2 to=12", () -> adamw.scaleRange(ok, 2, 12, 0.5f));
        assertRejected("chunk=1", () -> adamw.normChunkSumOfSquares(ok, 1));
    }

    @Test
    void shouldAcceptArraysLongerThanTheSlabAndLeaveTheExtraUntouched() {
        final AdamW adamw = new AdamW(AdamWConfig.defaults(), TWO);
        final float[] params = new float[12];
        Arrays.fill(params, 1.0f);
        final float[] grads = new float[12];
        Arrays.fill(grads, 0.5f);

        adamw.step(params, grads, 1e-2);

        assertEquals(1.0f, params[6], "gap");
        assertEquals(1.0f, params[7], "gap");
        assertEquals(1.0f, params[10], "past the slab");
        assertEquals(1.0f, params[11], "past the slab");
        assertTrue(params[0] < 1.0f && params[9] < 1.0f);
    }

    @Test
    void shouldRefuseUpdateRangeBeforeBeginStep() {
        final AdamW adamw = new AdamW(AdamWConfig.defaults(), TWO);
        final IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> adamw.updateRange(new float[10], new float[10], 0, 10));
        assertTrue(e.getMessage().contains("call beginStep(lr)"), e.getMessage());
    }
}
