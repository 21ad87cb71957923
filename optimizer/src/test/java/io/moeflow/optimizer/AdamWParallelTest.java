package io.moeflow.optimizer;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.function.IntConsumer;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The parallel form gives bit-for-bit the result of the serial one, whatever the split: ranges that cut
 * segments, start at odd offsets (so the same element falls in the SIMD body of the compiled loop in
 * one split and in its scalar tail in another), are empty, cover gaps only, or run in a scrambled order
 * or on other threads.
 */
class AdamWParallelTest {

    private static final AdamWConfig CONFIG = new AdamWConfig(0.9, 0.95, 1e-8, 0.1, 1.0);

    @Test
    void shouldMatchStepBitwiseForAnySplitIntoRanges() {
        final RandomSlab slab = new RandomSlab(7L, 17, 300);
        final AdamW whole = new AdamW(CONFIG, slab.segments);
        final AdamW split = new AdamW(CONFIG, slab.segments);
        final float[] wholeParams = slab.params();
        final float[] splitParams = slab.params();
        final Random order = new Random(3L);

        for (int step = 0; step < 40; step++) {
            final float[] grads = slab.nextGrads();
            final double lr = 1e-3 * (1 + step % 3);
            whole.step(wholeParams, grads, lr);

            split.beginStep(lr);
            final List<int[]> ranges = randomRanges(slab, 1 + slab.nextInt(12));
            Collections.shuffle(ranges, order);
            for (final int[] range : ranges) {
                split.updateRange(splitParams, grads, range[0], range[1]);
            }
        }

        assertBitwiseEqual(wholeParams, splitParams, "params");
        assertBitwiseEqual(whole.expAvg(), split.expAvg(), "exp_avg");
        assertBitwiseEqual(whole.expAvgSq(), split.expAvgSq(), "exp_avg_sq");
        assertEquals(whole.stepCount(), split.stepCount());
    }

    @Test
    @Timeout(value = 60, unit = TimeUnit.SECONDS)
    void shouldMatchSerialClipAndStepBitwiseWhenTwoThreadsShareTheWork() throws Exception {
        final RandomSlab slab = new RandomSlab(11L, 30, 5000);    // ~75 k floats: several norm chunks
        final AdamW serial = new AdamW(CONFIG, slab.segments);
        final AdamW parallel = new AdamW(CONFIG, slab.segments);
        final float[] serialParams = slab.params();
        final float[] parallelParams = slab.params();
        final int n = slab.slabLength;
        final double[] partials = new double[parallel.normChunkCount()];
        final ExecutorService pool = Executors.newFixedThreadPool(2);
        try {
            for (int step = 0; step < 20; step++) {
                final float[] grads = slab.nextGrads();
                final float[] parallelGrads = grads.clone();
                final double serialNorm = serial.clipGradNorm(grads);
                serial.step(serialParams, grads, 2e-3);

                // 1. partial sums of squares: worker w takes chunks w, w + 2, w + 4, ...
                runOnBoth(pool, w -> {
                    for (int c = w; c < partials.length; c += 2) {
                        partials[c] = parallel.normChunkSumOfSquares(parallelGrads, c);
                    }
                });
                // 2. one thread: combine in chunk order, the clip factor, the step constants
                double sum = 0.0;
                for (final double partial : partials) {
                    sum += partial;
                }
                final double norm = Math.sqrt(sum);
                assertEquals(serialNorm, norm, 0.0, "the chunked norm equals clipGradNorm's bit for bit");
                final float factor = (float) CONFIG.clipCoefficient(norm);
                parallel.beginStep(2e-3);
                // 3. worker w clips and updates its half of the slab
                runOnBoth(pool, w -> {
                    final int from = w == 0 ? 0 : n / 3;          // an uneven split on purpose
                    final int to = w == 0 ? n / 3 : n;
                    if (factor < 1.0f) {
                        parallel.scaleRange(parallelGrads, from, to, factor);
                    }
                    parallel.updateRange(parallelParams, parallelGrads, from, to);
                });
            }
        } finally {
            pool.shutdownNow();
        }

        assertBitwiseEqual(serialParams, parallelParams, "params");
        assertBitwiseEqual(serial.expAvg(), parallel.expAvg(), "exp_avg");
        assertBitwiseEqual(serial.expAvgSq(), parallel.expAvgSq(), "exp_avg_sq");
    }

    /** Runs {@code work} for worker 0 and worker 1 on the pool and waits for both (bounded). */
    private static void runOnBoth(final ExecutorService pool, final IntConsumer work)
            throws Exception {
        final List<Future<?>> futures = new ArrayList<>();
        for (int w = 0; w < 2; w++) {
            final int worker = w;
            futures.add(pool.submit(() -> work.accept(worker)));
        }
        for (final Future<?> f : futures) {
            f.get(30, TimeUnit.SECONDS);
        }
    }

    /** Random ranges [c_k, c_k+1) tiling the slab, from sorted random cut points (repeats give empty ranges). */
    private static List<int[]> randomRanges(final RandomSlab slab, final int count) {
        final int[] cuts = new int[count + 1];
        for (int k = 1; k < count; k++) {
            cuts[k] = slab.nextInt(slab.slabLength + 1);
        }
        cuts[count] = slab.slabLength;
        Arrays.sort(cuts);
        final List<int[]> ranges = new ArrayList<>();
        for (int k = 0; k < count; k++) {
            ranges.add(new int[] {cuts[k], cuts[k + 1]});
        }
        return ranges;
    }

    static void assertBitwiseEqual(final float[] expected, final float[] actual, final String what) {
        assertEquals(expected.length, actual.length, what + " length");
        for (int i = 0; i < expected.length; i++) {
            assertEquals(Float.floatToRawIntBits(expected[i]), Float.floatToRawIntBits(actual[i]),
                    what + "[" + i + "]: " + expected[i] + " vs " + actual[i]);
        }
    }
}
