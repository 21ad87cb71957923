package io.moeflow.trainer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;

import io.moeflow.curriculum.CurriculumConfig;
import io.moeflow.curriculum.Dataset;
import io.moeflow.optimizer.AdamWConfig;
import io.moeflow.trainer.model.ModelConfig;
import io.moeflow.trainer.model.RouterScore;
import io.moeflow.trainer.parallel.ParallelConfig;
import io.moeflow.trainer.parallel.ParallelConfig.GradCompression;
import io.moeflow.transport.Communicator;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * A data-parallel job of 2 ranks (threads over the in-process transport) against the one-process run
 * on the same global batch of 8 rows (4 per rank).
 *
 * <p>What is bitwise and why: every rank starts from the same seed, so the parameters are equal; the
 * forward of a token does not depend on which other rows share its batch (attention is per sequence,
 * every kernel computes an output row in an order independent of the rows around it), so the per-token
 * losses of the first step are the same bits, and the job's cross-entropy, summed from the gathered
 * per-token losses in token order, too. The gradient is a sum over tokens: one process adds all 256
 * tokens in one running float sum per weight, two ranks add 128 each and the all-reduce adds the two
 * halves; float addition is not associative, so gradients differ in the last bits (measured: 4e-7 of
 * the largest gradient after step 1), then the parameters AdamW derives from them (1.4e-6 after one
 * step, 1e-5 after 20, relative to the largest parameter). Across ranks everything is bitwise: the
 * all-reduce gives every rank the same sum, so the replicas never drift. With 2 ranks the sum of two
 * values does not depend on the all-reduce algorithm either, so the bucket size changes no bit.
 */
@Timeout(180)
class DataParallelEquivalenceTest {
    private final Dataset data = TinyRuns.builtin().training();
    /** The tiny model with z-loss, without the aux loss, dropless, no balancing bias. */
    private static final ModelConfig DENSE_ONLY = new ModelConfig(256, 32, 32, 1, 2, 4, 2, 64, 0, RouterScore.SOFTMAX,
        0.0, 0.001, false, 1e-3, 0.0, 0.02);
    /**
     * Everything that depends on the whole batch's routing: the aux loss (job-wide load fractions), the
     * balancing bias (job-wide load) and a capacity of 1.0 that drops pairs (job-wide priority order).
     */
    private static final ModelConfig JOB_WIDE_ROUTING = new ModelConfig(256, 32, 32, 2, 2, 4, 2, 64, 0,
        RouterScore.SOFTMAX, 0.01, 0.001, true, 1e-3, 1.0, 0.02);

    private ModelConfig model = DENSE_ONLY;

    /** What a run leaves behind: the loss of every step, the last step's (reduced, clipped) gradient and the parameters. */
    record Run(double[] losses, double[] crossEntropy, float[] grads, float[] params, float[] residual, float[] bias,
               int[] load, int[] dropped) {
    }

    private Run run(final int steps, final ParallelConfig parallel, final Communicator world) {
        final TrainerConfig config = TinyRuns.constantLr(steps, 1, 3e-3);
        try (Trainer t = new Trainer(config, model, AdamWConfig.defaults(),
            CurriculumConfig.defaults(CurriculumConfig.Kind.NONE, steps), data, parallel, world)) {
            final double[] losses = new double[steps];
            final double[] ce = new double[steps];
            final int[] dropped = new int[steps];
            for (int s = 0; s < steps; s++) {
                final StepMetrics m = t.trainStep();
                losses[s] = m.loss;
                ce[s] = m.crossEntropy;
                dropped[s] = m.droppedTokens;
            }
            final float[] residual = new float[t.model().grads().length];
            t.denseGradientBuckets().copyResidualTo(residual);
            final int layers = t.model().config().layers();
            final int experts = t.model().config().experts();
            final float[] bias = new float[layers * experts];
            for (int l = 0; l < layers; l++) {
                System.arraycopy(t.model().expertBias(l), 0, bias, l * experts, experts);
            }
            return new Run(losses, ce, t.model().grads().clone(), t.model().params().clone(), residual, bias,
                t.model().expertLoad().clone(), dropped);
        }
    }

    private List<Run> twoRanks(final int steps, final int bucketBytes, final GradCompression compression)
        throws Exception {
        return RankThreads.run(2, 120, (rank, world) ->
            run(steps, new ParallelConfig(2, rank, 1, bucketBytes, compression), world));
    }

    @Test
    void shouldRunAWorldOfOneBitwiseLikeOneProcess() throws Exception {
        final Run single = run(3, ParallelConfig.SINGLE, null);
        final Run one = RankThreads.run(1, 60, (rank, world) -> run(3, ParallelConfig.dataParallel(1, 0), world)).get(0);
        assertArrayEquals(single.losses, one.losses, 0.0);
        assertArrayEquals(single.params, one.params);
    }

    @Test
    void shouldMatchTheOneProcessRunAfterOneStep() throws Exception {
        final Run single = run(1, ParallelConfig.SINGLE, null);
        final List<Run> ranks = twoRanks(1, ParallelConfig.DEFAULT_BUCKET_BYTES, GradCompression.NONE);
        for (final Run r : ranks) {
            assertEquals(single.crossEntropy[0], r.crossEntropy[0], 0.0, "cross-entropy of step 1 (bitwise)");
            assertEquals(single.losses[0], r.losses[0], 1e-12, "loss of step 1");
            assertClose(single.grads, r.grads, 2e-6, "gradient of step 1");
            assertClose(single.params, r.params, 1e-5, "parameters after step 1");
        }
        assertArrayEquals(ranks.get(0).grads, ranks.get(1).grads, "both ranks hold the same gradient");
        assertArrayEquals(ranks.get(0).params, ranks.get(1).params, "both ranks hold the same parameters");
    }

    @Test
    void shouldMatchTheOneProcessRunAfterTwentySteps() throws Exception {
        final Run single = run(20, ParallelConfig.SINGLE, null);
        final List<Run> ranks = twoRanks(20, ParallelConfig.DEFAULT_BUCKET_BYTES, GradCompression.NONE);
        for (final Run r : ranks) {
            for (int s = 0; s < 20; s++) {
                assertEquals(single.losses[s], r.losses[s], 1e-6, "loss of step " + (s + 1));
            }
            assertClose(single.grads, r.grads, 1e-4, "gradient of step 20");
            assertClose(single.params, r.params, 1e-4, "parameters after 20 steps");
        }
        assertArrayEquals(ranks.get(0).losses, ranks.get(1).losses, 0.0, "every rank reports the job's loss");
        assertArrayEquals(ranks.get(0).params, ranks.get(1).params, "both ranks hold the same parameters");
    }

    @Test
    void shouldMatchTheOneProcessRunOnFourRanks() throws Exception {
        // 2 rows per rank; the 4-rank all-reduce adds in its own fixed order, the same on every rank
        final Run single = run(5, ParallelConfig.SINGLE, null);
        final List<Run> ranks = RankThreads.run(4, 120, (rank, world) ->
            run(5, ParallelConfig.dataParallel(4, rank), world));
        for (final Run r : ranks) {
            assertEquals(single.crossEntropy[0], r.crossEntropy[0], 0.0, "cross-entropy of step 1 (bitwise)");
            for (int s = 0; s < 5; s++) {
                assertEquals(single.losses[s], r.losses[s], 1e-6, "loss of step " + (s + 1));
            }
            assertClose(single.params, r.params, 1e-4, "parameters after 5 steps");
            assertArrayEquals(ranks.get(0).params, r.params, "every rank holds the same parameters");
        }
    }

    private double[] evalLosses(final ParallelConfig parallel, final Communicator world) {
        final TrainerConfig config = TinyRuns.constantLr(4, 1, 3e-3);
        try (Trainer t = new Trainer(config, model, AdamWConfig.defaults(),
            CurriculumConfig.defaults(CurriculumConfig.Kind.NONE, 4), data, parallel, world)) {
            t.evaluateEvery(TinyRuns.builtin().heldOut(), 2, 24);
            final double[] eval = new double[4];
            t.train(m -> eval[(int) m.step - 1] = m.evalLoss);
            return eval;
        }
    }

    @Test
    void shouldMeasureTheHeldOutLossOnEveryRankLikeOneProcess() throws Exception {
        final double[] single = evalLosses(ParallelConfig.SINGLE, null);
        final List<double[]> ranks = RankThreads.run(2, 120, (rank, world) ->
            evalLosses(ParallelConfig.dataParallel(2, rank), world));
        assertTrue(Double.isNaN(single[0]) && Double.isFinite(single[1]) && Double.isFinite(single[3]),
            "evaluated after steps 2 and 4 only");
        for (final double[] r : ranks) {
            for (int s = 0; s < 4; s++) {
                assertEquals(single[s], r[s], 1e-6, "held-out loss after step " + (s + 1));
            }
        }
        assertArrayEquals(ranks.get(0), ranks.get(1), 0.0, "every rank reports the same held-out loss");
    }

    @Test
    void shouldGiveTheSameBitsWhateverTheBucketSize() throws Exception {
        // 4 KiB buckets: the tiny model's 36k floats go in ~36 all-reduces, most launched while backward runs
        final Run small = twoRanks(5, 4096, GradCompression.NONE).get(0);
        final Run whole = twoRanks(5, 1 << 24, GradCompression.NONE).get(0);
        assertArrayEquals(whole.losses, small.losses, 0.0);
        assertArrayEquals(whole.params, small.params);
    }

    @Test
    void shouldTrainWithFp8GradientsCloseToFloat32AndKeepTheResidual() throws Exception {
        final Run exact = twoRanks(20, ParallelConfig.DEFAULT_BUCKET_BYTES, GradCompression.NONE).get(0);
        final List<Run> fp8 = twoRanks(20, ParallelConfig.DEFAULT_BUCKET_BYTES, GradCompression.FP8);
        assertArrayEquals(fp8.get(0).params, fp8.get(1).params, "FP8 results are the same bits on every rank");
        // FP8 E4M3 keeps 3 mantissa bits: the loss follows the float32 run closely but not bitwise
        assertNotEquals(exact.losses[19], fp8.get(0).losses[19]);
        assertEquals(exact.losses[19], fp8.get(0).losses[19], 0.05, "loss after 20 steps with FP8 gradients");
        assertTrue(exact.losses[19] < exact.losses[0] - 0.3 && fp8.get(0).losses[19] < fp8.get(0).losses[0] - 0.3,
            "both runs learn");
        double residual = 0;
        for (final float v : fp8.get(0).residual) {
            residual += Math.abs(v);
        }
        assertTrue(residual > 0, "the error-feedback residual is rank state that a checkpoint must carry");
    }

    @Test
    void shouldMatchTheOneProcessRunWithJobWideRoutingStatistics() throws Exception {
        model = JOB_WIDE_ROUTING;
        final Run single1 = run(1, ParallelConfig.SINGLE, null);
        final List<Run> ranks1 = twoRanks(1, ParallelConfig.DEFAULT_BUCKET_BYTES, GradCompression.NONE);
        assertTrue(single1.dropped[0] > 0, "capacity 1.0 drops pairs in the first step: " + single1.dropped[0]);
        for (final Run r : ranks1) {
            assertArrayEquals(single1.load, r.load, "the expert load is the job's, counted as in one process");
            assertEquals(single1.dropped[0], r.dropped[0], "the same pairs are dropped");
            assertEquals(single1.crossEntropy[0], r.crossEntropy[0], 0.0, "cross-entropy of step 1 (bitwise)");
            assertEquals(single1.losses[0], r.losses[0], 1e-12, "loss of step 1 (aux and z are sums in another order)");
            assertClose(single1.grads, r.grads, 2e-6, "gradient of step 1");
            assertArrayEquals(single1.bias, r.bias, "balancing biases after step 1 (integer loads: bitwise)");
        }
        final Run single = run(20, ParallelConfig.SINGLE, null);
        final List<Run> ranks = twoRanks(20, ParallelConfig.DEFAULT_BUCKET_BYTES, GradCompression.NONE);
        for (final Run r : ranks) {
            for (int s = 0; s < 20; s++) {
                assertEquals(single.losses[s], r.losses[s], 1e-5, "loss of step " + (s + 1));
            }
            assertClose(single.params, r.params, 1e-4, "parameters after 20 steps");
            assertClose(single.bias, r.bias, 1e-3, "balancing biases after 20 steps");
        }
        assertArrayEquals(ranks.get(0).bias, ranks.get(1).bias, "every rank holds the same biases");
        assertArrayEquals(ranks.get(0).params, ranks.get(1).params, "both ranks hold the same parameters");
    }

    /** max |expected - actual| over the slab, relative to max |expected|, within {@code tolerance}. */
    static void assertClose(final float[] expected, final float[] actual, final double tolerance, final String what) {
        double maxDiff = 0;
        double maxAbs = 0;
        int worst = -1;
        for (int i = 0; i < expected.length; i++) {
            final double d = Math.abs((double) expected[i] - actual[i]);
            if (d > maxDiff) {
                maxDiff = d;
                worst = i;
            }
            maxAbs = Math.max(maxAbs, Math.abs(expected[i]));
        }
        assertTrue(maxDiff <= tolerance * maxAbs, what + ": max difference " + maxDiff + " at slab element " + worst
            + " exceeds " + tolerance + " x max |value| " + maxAbs);
    }
}
