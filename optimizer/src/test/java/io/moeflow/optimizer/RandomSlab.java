package io.moeflow.optimizer;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

/**
 * A seeded random parameter slab for tests: segments of random lengths with random decay flags and
 * gaps between them, one segment that always gets a zero gradient (an expert that receives no tokens),
 * and gradient scales that differ by segment. Gaps hold NaN in the gradients, so any code that reads a
 * gap turns the result into NaN and fails the test.
 */
final class RandomSlab {

    final List<ParamSegment> segments;
    final int slabLength;
    private final float[] initialParams;
    private final double[] gradScale;
    private final int deadSegment;
    private final SplittableRandom random;

    RandomSlab(final long seed, final int segmentCount, final int maxSegmentLength) {
        this.random = new SplittableRandom(seed);
        final List<ParamSegment> list = new ArrayList<>();
        this.gradScale = new double[segmentCount];
        int offset = 0;
        for (int s = 0; s < segmentCount; s++) {
            offset += random.nextInt(3) == 0 ? 1 + random.nextInt(5) : 0;      // a gap before some segments
            final int length = 1 + random.nextInt(maxSegmentLength);
            list.add(new ParamSegment("segment." + s, offset, length, random.nextBoolean()));
            gradScale[s] = Math.pow(10.0, -3 + 3 * random.nextDouble());       // 1e-3 .. 1
            offset += length;
        }
        this.segments = List.copyOf(list);
        this.slabLength = offset;
        this.deadSegment = random.nextInt(segmentCount);
        this.initialParams = new float[slabLength];
        Arrays.fill(initialParams, Float.NaN);
        for (final ParamSegment s : segments) {
            for (int i = s.offset(); i < s.end(); i++) {
                initialParams[i] = (float) (0.02 * random.nextGaussian());
            }
        }
    }

    /** A fresh copy of the initial parameters (gaps hold NaN). */
    float[] params() {
        return initialParams.clone();
    }

    /**
     * A new gradient slab for one step: Gaussian times the segment's scale times a per-step factor in
     * [0.03, 3] (so the global norm, about 25 at factor 1, varies from step to step), zero in the dead
     * segment, NaN in gaps.
     */
    float[] nextGrads() {
        final double stepFactor = Math.pow(10.0, -1.5 + 2 * random.nextDouble());
        final float[] grads = new float[slabLength];
        Arrays.fill(grads, Float.NaN);
        for (int s = 0; s < segments.size(); s++) {
            final ParamSegment segment = segments.get(s);
            for (int i = segment.offset(); i < segment.end(); i++) {
                grads[i] = s == deadSegment ? 0.0f : (float) (stepFactor * gradScale[s] * random.nextGaussian());
            }
        }
        return grads;
    }

    /** A random integer in {@code [0, bound)} from the same seeded stream. */
    int nextInt(final int bound) {
        return random.nextInt(bound);
    }
}
