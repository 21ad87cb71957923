package io.moeflow.optimizer;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

/**
 * A speed comparison, not a test: one AdamW update of a 2.3 M-float slab by the fast {@link AdamW} (one
 * thread, and two threads through {@code updateRange}) against {@link AdamWReference}, measured in the
 * same run and reported as ratios. Rounds alternate between the variants so that load from other
 * processes hits them alike; the median round is reported.
 *
 * <pre>
 * mvn -B -ntp -q -pl optimizer -am test-compile
 * java -cp optimizer/target/classes:optimizer/target/test-classes io.moeflow.optimizer.AdamWBench [floats] [rounds]
 * </pre>
 */
public final class AdamWBench {

    private AdamWBench() {
    }

    /** Runs the comparison; arguments: slab length in floats (default 2.3 M), rounds (default 15). */
    public static void main(final String[] args) throws Exception {
        final int floats = args.length > 0 ? Integer.parseInt(args[0]) : 2_300_000;
        final int rounds = args.length > 1 ? Integer.parseInt(args[1]) : 15;
        final List<ParamSegment> segments = modelLikeSegments(floats);
        final SplittableRandom random = new SplittableRandom(1L);
        final float[] params = new float[floats];
        final float[] grads = new float[floats];
        for (int i = 0; i < floats; i++) {
            params[i] = (float) (0.02 * random.nextGaussian());
            grads[i] = (float) (1e-3 * random.nextGaussian());
        }
        final AdamWConfig config = AdamWConfig.defaults();
        final AdamW fast = new AdamW(config, segments);
        final AdamW fastTwoThreads = new AdamW(config, segments);
        final AdamWReference reference = new AdamWReference(config, segments);
        final ExecutorService pool = Executors.newFixedThreadPool(2);
        final long[][] nanos = new long[4][rounds];
        try {
            final int warmup = 5;
            for (int round = -warmup; round < rounds; round++) {
                final long t0 = System.nanoTime();
                reference.step(params, grads, 1e-6);
                final long t1 = System.nanoTime();
                fast.step(params, grads, 1e-6);
                final long t2 = System.nanoTime();
                stepOnTwoThreads(pool, fastTwoThreads, params, grads);
                final long t3 = System.nanoTime();
                fast.clipGradNorm(grads);
                final long t4 = System.nanoTime();
                if (round >= 0) {
                    nanos[0][round] = t1 - t0;
                    nanos[1][round] = t2 - t1;
                    nanos[2][round] = t3 - t2;
                    nanos[3][round] = t4 - t3;
                }
            }
        } finally {
            pool.shutdownNow();
        }
        final double referenceMs = medianMs(nanos[0]);
        final double fastMs = medianMs(nanos[1]);
        final double twoThreadMs = medianMs(nanos[2]);
        final double clipMs = medianMs(nanos[3]);
        System.out.printf("AdamW update of %,d floats in %d segments, median of %d rounds%n",
                floats, segments.size(), rounds);
        System.out.printf("  reference (scalar, double) : %8.2f ms%n", referenceMs);
        System.out.printf("  fast, 1 thread             : %8.2f ms   %.1fx the reference%n", fastMs,
                referenceMs / fastMs);
        System.out.printf("  fast, 2 threads            : %8.2f ms   %.1fx the reference%n", twoThreadMs,
                referenceMs / twoThreadMs);
        System.out.printf("  clipGradNorm, 1 thread     : %8.2f ms%n", clipMs);
        System.out.printf("  fast 1 thread moves %.1f GB/s (7 float streams: read p, g, m, v; write p, m, v)%n",
                7.0 * 4 * floats / (fastMs * 1e6));
    }

    /** Weight matrices (decayed) of a few sizes with their biases (not decayed), repeated to fill the slab. */
    private static List<ParamSegment> modelLikeSegments(final int floats) {
        final List<ParamSegment> segments = new ArrayList<>();
        final int[] weightLengths = {128 * 384, 128 * 128, 128 * 256, 256 * 128};
        int offset = 0;
        for (int k = 0; offset < floats; k++) {
            final int weight = Math.min(weightLengths[k % weightLengths.length], floats - offset);
            segments.add(new ParamSegment("w" + k, offset, weight, true));
            offset += weight;
            final int bias = Math.min(128, floats - offset);
            if (bias > 0) {
                segments.add(new ParamSegment("b" + k, offset, bias, false));
                offset += bias;
            }
        }
        return segments;
    }

    private static void stepOnTwoThreads(final ExecutorService pool, final AdamW adamw, final float[] params,
                                         final float[] grads) throws Exception {
        adamw.beginStep(1e-6);
        final int half = adamw.slabLength() / 2;
        final Future<?> second = pool.submit(() -> adamw.updateRange(params, grads, half, adamw.slabLength()));
        adamw.updateRange(params, grads, 0, half);
        second.get(60, TimeUnit.SECONDS);
    }

    private static double medianMs(final long[] nanos) {
        final long[] sorted = nanos.clone();
        Arrays.sort(sorted);
        return sorted[sorted.length / 2] / 1e6;
    }
}
