package io.moeflow.trainer.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.moeflow.optimizer.AdamW;
import io.moeflow.optimizer.AdamWConfig;
import io.moeflow.optimizer.ParamSegment;
import io.moeflow.trainer.kernels.Kernels;
import io.moeflow.trainer.parallel.ParallelConfig;
import io.moeflow.trainer.parallel.ParallelGroups;
import io.moeflow.transport.Communicator;
import io.moeflow.transport.CommunicatorConfig;
import io.moeflow.transport.RankThreads;
import io.moeflow.transport.ReduceOp;
import io.moeflow.transport.inprocess.InProcessCluster;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Expert and data parallelism against one process on the same global batch, ranks as threads over the in-process
 * transport. Rank r trains sequences [r*B/W, (r+1)*B/W) of the global batch; the test plays the data-parallel
 * helper's part for the replicated tensors (average over the job) and leaves the expert tensors to the model.
 * <p>
 * What is bitwise and why: every forward quantity is per token (attention per sequence), so per-token losses, routing,
 * load and dropping match bit for bit; with W a power of two a rank's loss scale 1/N_local is exactly W times the
 * one-process 1/N, so per-token gradients are exactly W times as large. When the expert-parallel degree equals the
 * world size, an owner sees every token of its experts in the one-process row order (choice rank, rank, position) and
 * adds the same products in the same order: expert gradients match bitwise. Replicated tensors' gradients are sums
 * over tokens split across ranks and then added across ranks, a different order: within {@link #GRAD_TOLERANCE}, as
 * are expert gradients when replicas of an expert shard each hold part of its tokens (DP x EP).
 */
@Timeout(value = 180, unit = TimeUnit.SECONDS)
class ExpertParallelTest {
    /** Gradients summed in another order: |dist - single| &lt;= this * max|single| per tensor (float sums, ~1e-7). */
    static final double GRAD_TOLERANCE = 1e-5;
    /**
     * Parameters after 20 AdamW steps from gradients that differ in the last bits, per tensor relative to max|p|.
     * Measured worst 1.1e-4 (an attention qkv bias, see {@link #ADAMW}); everything else stays below 7e-5.
     */
    static final double PARAM_TOLERANCE = 5e-4;
    /**
     * AdamW with eps 1e-6 rather than 1e-8: the attention key bias has an exactly zero gradient in exact arithmetic
     * (softmax ignores a constant added to a row of scores), so its computed gradient is rounding noise of ~1e-10 whose
     * sign depends on the order of additions, and with eps 1e-8 AdamW turns that noise into steps of +-lr. With 1e-6
     * such noise moves a parameter by ~1e-4 lr, and real gradients (1e-4 and up) are updated as before.
     */
    static final CommunicatorConfig COMM = CommunicatorConfig.DEFAULT.withOpTimeoutNs(TimeUnit.SECONDS.toNanos(30));
    static final AdamWConfig ADAMW = new AdamWConfig(0.9, 0.95, 1e-6, 0.1, 0.0);
    static final double LR = 3e-3;
    static final int GLOBAL_BATCH = 4;

    static ModelConfig config(final int shared, final double capacity, final boolean bias) {
        return new ModelConfig(32, 16, 32, 2, 2, 4, 2, 32, shared, RouterScore.SOFTMAX, 0.01, 0.001, bias, 1e-3,
            capacity, 0.05);
    }

    /** What one run leaves behind: per step the per-token losses, load and dropped pairs; gradients of step 1. */
    static final class Run {
        final List<float[]> tokenLosses = new ArrayList<>();
        final List<int[]> load = new ArrayList<>();
        final List<Integer> dropped = new ArrayList<>();
        float[] firstGrads;
        int[] firstSelected;
        float[] params;
        float[][] bias;
    }

    static int[] batch(final ModelConfig c, final int step) {
        return GradCheck.randomTokens(c, GLOBAL_BATCH, 100 + step);
    }

    static Run single(final ModelConfig c, final int steps, final Consumer<MoeModel> setup) {
        final Run run = new Run();
        try (MoeModel m = new MoeModel(c, GLOBAL_BATCH, 1, Kernels.FAST, 11)) {
            setup.accept(m);
            final AdamW adam = new AdamW(ADAMW, m.paramSegments());
            for (int s = 0; s < steps; s++) {
                m.forward(batch(c, s));
                m.backward();
                record(run, m, s);
                adam.step(m.params(), m.grads(), LR);
                m.updateBalancingBias();
            }
            run.params = m.params().clone();
            run.bias = biases(m);
        }
        return run;
    }

    static Run[] distributed(final ModelConfig c, final int world, final int degree, final int steps,
        final Consumer<MoeModel> setup) {
        final Run[] runs = new Run[world];
        final int local = GLOBAL_BATCH / world;
        final int seqTokens = c.seqLen() + 1;
        try (InProcessCluster cluster = InProcessCluster.create(world)) {
            final List<Communicator> comms = cluster.communicators(COMM);
            RankThreads.run(world, 150_000, rank -> {
                final Communicator comm = comms.get(rank);
                final Run run = new Run();
                try (ParallelGroups groups = split(comm, world, rank, degree, c.experts());
                     MoeModel m = new MoeModel(c, local, 1, Kernels.FAST, 11, groups)) {
                    setup.accept(m);
                    final AdamW adam = new AdamW(ADAMW, m.paramSegments());
                    for (int s = 0; s < steps; s++) {
                        final int[] all = batch(c, s);
                        m.forward(Arrays.copyOfRange(all, rank * local * seqTokens, (rank + 1) * local * seqTokens));
                        m.backward();
                        for (final TensorView v : m.tensors()) {
                            if (MoeModel.expertOf(v) < 0) {
                                comm.allReduce(m.grads(), v.offset(), v.length(), ReduceOp.AVERAGE);
                            }
                        }
                        record(run, m, s);
                        adam.beginStep(LR);
                        for (final ParamSegment seg : m.paramSegments()) {
                            adam.updateRange(m.params(), m.grads(), seg.offset(), seg.end());
                        }
                        m.updateBalancingBias();
                    }
                    m.gatherExpertParameters();
                    run.params = m.params().clone();
                    run.bias = biases(m);
                }
                runs[rank] = run;
            });
            comms.forEach(Communicator::close);
        }
        return runs;
    }

    static ParallelGroups split(final Communicator world, final int size, final int rank, final int degree,
        final int experts) {
        return ParallelGroups.split(new ParallelConfig(size, rank, degree, ParallelConfig.DEFAULT_BUCKET_BYTES,
            ParallelConfig.GradCompression.NONE), world, experts);
    }

    static void record(final Run run, final MoeModel m, final int step) {
        run.tokenLosses.add(m.tokenLosses().clone());
        run.load.add(m.expertLoad().clone());
        run.dropped.add(m.droppedTokens());
        if (step == 0) {
            run.firstGrads = m.grads().clone();
            run.firstSelected = m.routingSelected().clone();
        }
    }

    static float[][] biases(final MoeModel m) {
        final float[][] b = new float[m.config().layers()][];
        for (int l = 0; l < b.length; l++) {
            b[l] = m.expertBias(l).clone();
        }
        return b;
    }

    /** Checks a distributed run against the single one; returns the worst relative parameter difference. */
    static double compare(final ModelConfig c, final Run one, final Run[] ranks, final int degree, final int steps) {
        final int world = ranks.length;
        final int n = GLOBAL_BATCH * c.seqLen() / world;
        for (int s = 0; s < steps; s++) {
            int dropped = 0;
            for (int r = 0; r < world; r++) {
                final float[] expected = Arrays.copyOfRange(one.tokenLosses.get(s), r * n, (r + 1) * n);
                if (s == 0) {
                    assertArrayEquals(expected, ranks[r].tokenLosses.get(s), "step 1 per-token losses of rank " + r);
                } else {
                    assertClose(expected, ranks[r].tokenLosses.get(s), 1e-4, "step " + (s + 1) + " losses, rank " + r);
                }
                if (s == 0) {
                    assertArrayEquals(one.load.get(s), ranks[r].load.get(s), "step 1 job-wide load on rank " + r);
                }
                dropped += ranks[r].dropped.get(s);
            }
            if (s == 0) {
                assertEquals(one.dropped.get(s), dropped, "step 1 dropped pairs summed over ranks");
            }
        }
        final TensorViews views = new TensorViews(c);
        double worstParam = 0;
        String worstName = "";
        for (final TensorView v : views.all) {
            final int e = MoeModel.expertOf(v);
            for (int r = 0; r < world; r++) {
                final boolean owner = e < 0 || e / (c.experts() / degree) == r % degree;
                if (!owner) {
                    continue;
                }
                final float[] want = Arrays.copyOfRange(one.firstGrads, v.offset(), v.offset() + v.length());
                final float[] got = Arrays.copyOfRange(ranks[r].firstGrads, v.offset(), v.offset() + v.length());
                if (e >= 0 && degree == world) {
                    assertArrayEquals(want, got, "expert gradient " + v.name() + " on its owner, rank " + r);
                } else {
                    assertClose(want, got, GRAD_TOLERANCE, "gradient " + v.name() + " on rank " + r);
                }
            }
            // after the last step every rank holds every tensor (experts gathered from their owners)
            final float[] want = Arrays.copyOfRange(one.params, v.offset(), v.offset() + v.length());
            for (int r = 0; r < world; r++) {
                final float[] got = Arrays.copyOfRange(ranks[r].params, v.offset(), v.offset() + v.length());
                final double diff = assertClose(want, got, PARAM_TOLERANCE,
                    "parameter " + v.name() + " after " + steps + " steps on rank " + r);
                if (diff > worstParam) {
                    worstParam = diff;
                    worstName = v.name();
                }
            }
        }
        for (int r = 0; r < world; r++) {
            for (int l = 0; l < c.layers(); l++) {
                assertArrayEquals(one.bias[l], ranks[r].bias[l], "balancing bias of layer " + l + " on rank " + r);
            }
        }
        System.out.printf("EP equivalence W=%d K=%d steps=%d: worst parameter difference %.3g of max|p| (%s)%n", world,
            degree, steps, worstParam, worstName);
        return worstParam;
    }

    /** The tensor list of a config without building a model. */
    static final class TensorViews {
        final List<TensorView> all;

        TensorViews(final ModelConfig c) {
            all = new ParameterLayout(c).views;
        }
    }

    static double assertClose(final float[] want, final float[] got, final double tolerance, final String what) {
        double scale = 0;
        double worst = 0;
        for (int i = 0; i < want.length; i++) {
            scale = Math.max(scale, Math.abs(want[i]));
            worst = Math.max(worst, Math.abs(want[i] - got[i]));
        }
        final double relative = worst / Math.max(scale, 1e-12);
        assertTrue(relative <= tolerance, what + ": differs by " + worst + " against a scale of " + scale);
        return relative;
    }

    static void check(final ModelConfig c, final int world, final int degree, final int steps,
        final Consumer<MoeModel> setup) {
        final Run one = single(c, steps, setup);
        final Run[] ranks = distributed(c, world, degree, steps, setup);
        compare(c, one, ranks, degree, steps);
    }

    @Test
    void shouldMatchOneProcessAfterOneStepWithTwoExpertParallelRanks() {
        check(config(1, 0.0, false), 2, 2, 1, m -> { });
    }

    @Test
    void shouldMatchOneProcessOverTwentyStepsWithTwoExpertParallelRanks() {
        check(config(1, 0.0, true), 2, 2, 20, m -> { });
    }

    @Test
    void shouldMatchOneProcessWithFourRanksAsTwoDataParallelTimesTwoExpertParallel() {
        check(config(0, 0.0, true), 4, 2, 20, m -> { });
    }

    @Test
    void shouldMatchOneProcessWithTwoDataParallelRanksOwningEveryExpert() {
        check(config(1, 0.0, false), 2, 1, 20, m -> { });
    }

    @Test
    void shouldDropTheSamePairsAsOneProcessWhenOverCapacity() {
        final ModelConfig c = config(0, 0.5, false);
        final Run one = single(c, 20, m -> { });
        assertTrue(one.dropped.get(0) > 0, "the capacity must drop pairs for this test to mean anything");
        compare(c, one, distributed(c, 2, 2, 20, m -> { }), 2, 20);
        compare(c, one, distributed(c, 4, 2, 20, m -> { }), 2, 20);
    }

    @Test
    void shouldTakePartCorrectlyWhenAnExpertGetsNoTokens() {
        // expert 1 never chosen (its selection bias is -inf): its owner receives zero rows for it from every rank
        final ModelConfig c = config(1, 0.0, true);
        final Consumer<MoeModel> idle = m -> {
            for (int l = 0; l < c.layers(); l++) {
                m.expertBias(l)[1] = Float.NEGATIVE_INFINITY;
            }
        };
        final Run one = single(c, 20, idle);
        assertEquals(0, one.load.get(0)[1], "expert 1 of layer 0 idle");
        final Run[] ranks = distributed(c, 4, 2, 20, idle);
        compare(c, one, ranks, 2, 20);
        final TensorViews views = new TensorViews(c);
        for (final TensorView v : views.all) {
            if (MoeModel.expertOf(v) == 1) {
                for (int i = v.offset(); i < v.offset() + v.length(); i++) {
                    assertEquals(0f, ranks[0].firstGrads[i], v.name() + " of the idle expert on its owner");
                }
            }
        }
    }

    @Test
    void shouldMatchOneProcessWithASigmoidRouterAndMoreChoicesThanExpertsPerRank() {
        // top-3 of 4 experts over 2 ranks: a token sends 1 or 2 rows to each owner (the receive bound uses min(k, E/K))
        final ModelConfig c = new ModelConfig(32, 16, 32, 2, 2, 4, 3, 32, 1, RouterScore.SIGMOID, 0.01, 0.001, true,
            1e-3, 0.0, 0.05);
        check(c, 2, 2, 5, m -> { });
    }

    @Test
    void shouldSeeSomeRankSendNothingToALiveExpert() {
        // with 4 ranks of 16 tokens over 4 experts, top-1 routing leaves some (rank, expert) pairs empty on this seed
        final ModelConfig c = new ModelConfig(32, 16, 32, 2, 2, 4, 1, 32, 0, RouterScore.SOFTMAX, 0.01, 0.0, false,
            1e-3, 0.0, 0.05);
        final Run one = single(c, 1, m -> { });
        final int n = GLOBAL_BATCH * c.seqLen();
        final int perRank = n / 4;
        boolean emptyPair = false;
        for (int l = 0; l < c.layers(); l++) {
            for (int r = 0; r < 4; r++) {
                final int[] count = new int[c.experts()];
                for (int t = r * perRank; t < (r + 1) * perRank; t++) {
                    count[one.firstSelected[l * n + t]]++;
                }
                for (int e = 0; e < c.experts(); e++) {
                    emptyPair |= count[e] == 0 && one.load.get(0)[l * c.experts() + e] > 0;
                }
            }
        }
        assertTrue(emptyPair, "this seed must leave some rank without a token for an expert that others use");
        final Run[] ranks = distributed(c, 4, 4, 1, m -> { });
        compare(c, one, ranks, 4, 1);
    }

    @Test
    void shouldListOnlyOwnedExpertsAmongTheSegmentsOfARank() {
        final ModelConfig c = config(1, 0.0, false);
        final List<List<String>> names = new ArrayList<>();
        try (InProcessCluster cluster = InProcessCluster.create(2)) {
            final List<Communicator> comms = cluster.communicators(COMM);
            final String[][] seen = new String[2][];
            final int[][] owners = new int[2][];
            RankThreads.run(2, 60_000, rank -> {
                try (ParallelGroups groups = split(comms.get(rank), 2, rank, 2, c.experts());
                     MoeModel m = new MoeModel(c, 1, 1, Kernels.FAST, 1, groups)) {
                    seen[rank] = m.paramSegments().stream().map(ParamSegment::name).toArray(String[]::new);
                    owners[rank] = new int[] {m.firstOwnedExpert(), m.ownedExpertCount(), m.ownersOfExpert(3)[0]};
                }
            });
            comms.forEach(Communicator::close);
            for (final String[] s : seen) {
                names.add(Arrays.asList(s));
            }
            assertArrayEquals(new int[] {0, 2, 1}, owners[0]);
            assertArrayEquals(new int[] {2, 2, 1}, owners[1]);
        }
        assertTrue(names.get(0).contains("blocks.0.moe.experts.1.w1.weight"));
        assertTrue(!names.get(0).contains("blocks.0.moe.experts.2.w1.weight"));
        assertTrue(names.get(1).contains("blocks.1.moe.experts.3.w2.bias"));
        assertTrue(!names.get(1).contains("blocks.1.moe.experts.0.w2.bias"));
        for (final List<String> n : names) {
            assertTrue(n.contains("blocks.0.moe.shared.0.w1.weight") && n.contains("head.weight"),
                "replicated tensors on every rank");
        }
    }

    /**
     * A step of an expert-parallel rank allocates no arrays: only the transport's async handles (3 per layer, plus one
     * per layer for the replica sum when W &gt; K). Measured on the rank's thread (the only compute thread here) as
     * the fewest bytes over 400 windows of 10 steps after warm-up (until C2 compiles the Vector API kernels they
     * allocate). Measured: 720 bytes per step with 2 layers (6 handles of 120 bytes); the bound allows 256 bytes per
     * handle, far below one activation row, and fails on any per-step array.
     */
    @Test
    void shouldAllocateOnlyTransportHandlesPerExpertParallelStep() {
        final ModelConfig c = config(1, 1.25, true);
        final long[] fewest = new long[2];
        try (InProcessCluster cluster = InProcessCluster.create(2)) {
            final List<Communicator> comms = cluster.communicators(COMM);
            RankThreads.run(2, 170_000, rank -> {
                final com.sun.management.ThreadMXBean mx =
                    (com.sun.management.ThreadMXBean) java.lang.management.ManagementFactory.getThreadMXBean();
                final long self = Thread.currentThread().getId();
                final int[] all = batch(c, 0);
                final int seq = c.seqLen() + 1;
                final int[] mine = Arrays.copyOfRange(all, rank * 2 * seq, (rank + 1) * 2 * seq);
                try (ParallelGroups groups = split(comms.get(rank), 2, rank, 2, c.experts());
                     MoeModel m = new MoeModel(c, 2, 1, Kernels.FAST, 11, groups)) {
                    long best = Long.MAX_VALUE;
                    // Both ranks run the same fixed number of steps (every step is collective). 400 windows give
                    // C2 time to compile the Vector API kernels also on a fast, idle machine, where 60 windows
                    // (0.8 s) ended before the compiler had and a step still allocated boxed vectors (86 kB).
                    for (int window = 0; window < 400; window++) {
                        final long before = mx.getThreadAllocatedBytes(self);
                        for (int s = 0; s < 10; s++) {
                            m.forward(mine);
                            m.backward();
                            m.updateBalancingBias();
                        }
                        best = Math.min(best, mx.getThreadAllocatedBytes(self) - before);
                    }
                    fewest[rank] = best / 10;
                }
            });
            comms.forEach(Communicator::close);
        }
        System.out.printf("EP step allocation per rank: %d and %d bytes%n", fewest[0], fewest[1]);
        for (int r = 0; r < 2; r++) {
            assertTrue(fewest[r] <= 256L * 3 * c.layers(), "rank " + r + " allocated " + fewest[r] +
                " bytes per step: more than the transport's async handles");
        }
    }
}
