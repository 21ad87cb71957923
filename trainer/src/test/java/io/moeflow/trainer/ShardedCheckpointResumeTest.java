package io.moeflow.trainer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import io.moeflow.checkpoint.CheckpointConfig;
import io.moeflow.checkpoint.CheckpointReader;
import io.moeflow.checkpoint.CheckpointStore;
import io.moeflow.checkpoint.CheckpointWriter;
import io.moeflow.checkpoint.FaultInjector;
import io.moeflow.checkpoint.Resolution;
import io.moeflow.checkpoint.RunMetadata;
import io.moeflow.checkpoint.ShardedMetadata;
import io.moeflow.curriculum.CurriculumConfig;
import io.moeflow.curriculum.Dataset;
import io.moeflow.optimizer.AdamWConfig;
import io.moeflow.trainer.model.ModelConfig;
import io.moeflow.trainer.parallel.ParallelConfig;
import io.moeflow.transport.Communicator;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Sharded checkpoints written and read by trainers that are ranks of a job (threads over the in-process
 * transport): a checkpoint of any job shape loads, by name, into any other, and the state survives every change of
 * shape bit for bit.
 */
@Timeout(240)
class ShardedCheckpointResumeTest {
    private static final int STEPS = 12;
    private static final RunMetadata METADATA = new RunMetadata("test", "test", RunMetadata.UNKNOWN, "17", 1, Map.of());

    private final Dataset data = TinyRuns.builtin().training();
    private final ModelConfig model = TinyRuns.tinyModel(32); // 4 experts, top-2

    @TempDir
    Path dir;

    /** Everything a checkpoint restores, copied out of a trainer. */
    record State(float[] params, float[] expAvg, float[] expAvgSq, float[] bias, long optimizerStep, long completed,
                 long[] curriculum, double lastLr) {
        static State of(final Trainer t) {
            return new State(t.model().params().clone(), t.optimizer().expAvg().clone(),
                t.optimizer().expAvgSq().clone(), t.model().expertBias(0).clone(), t.optimizer().stepCount(),
                t.completedSteps(), t.curriculum().state().toLongs(), t.lastLr());
        }

        void assertSameAs(final State o, final String what) {
            assertArrayEquals(params, o.params, what + ": parameters");
            assertArrayEquals(expAvg, o.expAvg, what + ": exp_avg");
            assertArrayEquals(expAvgSq, o.expAvgSq, what + ": exp_avg_sq");
            assertArrayEquals(bias, o.bias, what + ": balancing bias");
            assertEquals(optimizerStep, o.optimizerStep, what + ": AdamW step");
            assertEquals(completed, o.completed, what + ": completed steps");
            assertArrayEquals(curriculum, o.curriculum, what + ": curriculum state");
            assertEquals(lastLr, o.lastLr, what + ": last learning rate");
        }
    }

    private Trainer trainer(final ParallelConfig parallel, final Communicator world) {
        return new Trainer(TinyRuns.constantLr(STEPS, 1, 3e-3), model, AdamWConfig.defaults(),
            CurriculumConfig.defaults(CurriculumConfig.Kind.NONE, STEPS), data, parallel, world);
    }

    private static ParallelConfig expertParallel(final int world, final int rank, final int k) {
        return new ParallelConfig(world, rank, k, ParallelConfig.DEFAULT_BUCKET_BYTES,
            ParallelConfig.GradCompression.NONE);
    }

    /** Saves the trainer's state into {@code to} (sharded when it is a rank of a job) and waits for the commit. */
    private static void save(final Trainer t, final Path to, final boolean async) {
        try (CheckpointWriter w = RankCheckpoints.writer(CheckpointConfig.defaults(to).withAsyncSave(async), METADATA,
            t, FaultInjector.NONE)) {
            t.saveCheckpointsTo(w, 0);
            t.saveCheckpoint();
            assertEquals(1, w.commitPending().size(), "the save committed on this rank too");
        }
    }

    private static Resolution resume(final Trainer t, final Path from) {
        return RankCheckpoints.resumeAuto(new CheckpointStore(from), t).orElseThrow();
    }

    private static List<Double> trainTo(final Trainer t, final long steps) {
        final List<Double> losses = new ArrayList<>();
        while (t.completedSteps() < steps) {
            losses.add(t.trainStep().loss);
        }
        return losses;
    }

    /**
     * One process trains 6 steps and saves; jobs of the given shapes ({world, expert-parallel degree}) each load the
     * previous checkpoint and save it again; one process loads the last one: its state must be the one saved at step
     * 6 bit for bit, and training on must reproduce the 12-step run that never changed shape.
     */
    private void reshardThrough(final int[][] shapes) throws Exception {
        final List<Double> straight;
        final float[] straightParams;
        try (Trainer t = trainer(ParallelConfig.SINGLE, null)) {
            straight = trainTo(t, STEPS);
            straightParams = t.model().params().clone();
        }
        final State atSix;
        final List<Double> firstHalf;
        try (Trainer t = trainer(ParallelConfig.SINGLE, null)) {
            firstHalf = trainTo(t, STEPS / 2);
            atSix = State.of(t);
            save(t, dir.resolve("one"), true);
        }
        Path previous = dir.resolve("one");
        for (final int[] shape : shapes) {
            final Path from = previous;
            final Path to = dir.resolve("w" + shape[0] + "-ep" + shape[1]);
            RankThreads.run(shape[0], 120, (rank, world) -> {
                try (Trainer t = trainer(expertParallel(shape[0], rank, shape[1]), world)) {
                    assertEquals(STEPS / 2, resume(t, from).step());
                    assertArrayEquals(atSix.params, t.model().params(), "rank " + rank + " holds every parameter");
                    save(t, to, rank % 2 == 0);
                }
                return null;
            });
            try (CheckpointReader r = CheckpointReader.open(to.resolve("step-00000006"))) {
                final ShardedMetadata m = r.shardedMetadata().orElseThrow();
                assertEquals(shape[0], m.worldSize());
                assertEquals(String.valueOf(shape[1]), m.properties().get("expert_parallel"));
                assertEquals(0, m.tensors().get("model.h5 wte.weight"), "replicated tensors once, from rank 0");
                final int perRank = model.experts() / shape[1];
                for (int e = 0; e < model.experts(); e++) {
                    assertEquals(e / perRank, m.tensors().get("state.h5 optimizer/exp_avg/blocks.0.moe.experts." + e
                        + ".w1.weight"), "expert " + e + "'s moments come from its owner");
                }
            }
            previous = to;
        }
        try (Trainer t = trainer(ParallelConfig.SINGLE, null)) {
            assertEquals(STEPS / 2, resume(t, previous).step());
            State.of(t).assertSameAs(atSix, "after resharding through " + java.util.Arrays.deepToString(shapes));
            final List<Double> resumed = new ArrayList<>(firstHalf);
            resumed.addAll(trainTo(t, STEPS));
            assertEquals(straight, resumed, "losses of steps 1-12");
            assertArrayEquals(straightParams, t.model().params(), "parameters after step 12");
        }
    }

    @Test
    void shouldReshardFromOneProcessToFourRanksToTwoAndBackBitForBit() throws Exception {
        reshardThrough(new int[][] {{4, 1}, {2, 1}});
        try (CheckpointReader r = CheckpointReader.open(dir.resolve("w4-ep1/step-00000006"))) {
            assertEquals("0:0,1,2,3 1:0,1,2,3 2:0,1,2,3 3:0,1,2,3",
                r.shardedMetadata().orElseThrow().properties().get("expert_owners"), "every rank holds every expert");
        }
    }

    @Test
    void shouldMoveExpertsAndTheirMomentsToTheirNewOwnersFromFourRanksWithEp4ToTwoWithEp2ToOneProcess()
        throws Exception {
        reshardThrough(new int[][] {{4, 4}, {2, 2}});
        try (CheckpointReader ep4 = CheckpointReader.open(dir.resolve("w4-ep4/step-00000006"));
             CheckpointReader ep2 = CheckpointReader.open(dir.resolve("w2-ep2/step-00000006"))) {
            assertEquals("0:0 1:1 2:2 3:3", ep4.shardedMetadata().orElseThrow().properties().get("expert_owners"));
            assertEquals("0:0 1:0 2:1 3:1", ep2.shardedMetadata().orElseThrow().properties().get("expert_owners"));
            // Expert 2's moments were written by rank 2 of EP=4; rank 1 of EP=2, its owner now, read and rewrote them.
            assertEquals(2, ep4.shardedMetadata().orElseThrow().tensors()
                .get("state.h5 optimizer/exp_avg_sq/blocks.0.moe.experts.2.w2.bias"));
            assertEquals(1, ep2.shardedMetadata().orElseThrow().tensors()
                .get("state.h5 optimizer/exp_avg_sq/blocks.0.moe.experts.2.w2.bias"));
        }
    }

    @Test
    void shouldContinueAJobOnAnotherShapeLikeTheJobThatNeverChangedShape() throws Exception {
        // 4 ranks with EP=4 train with Trainer.train, saving every 4 steps (sharded, in the background), and stop after
        // step 6 (the request travels with the next step's all-gather; the stop saves once more).
        RankThreads.run(4, 120, (rank, world) -> {
            try (Trainer t = trainer(expertParallel(4, rank, 4), world);
                 CheckpointWriter w = RankCheckpoints.writer(CheckpointConfig.defaults(dir.resolve("job"))
                     .withKeepLast(0), METADATA, t, FaultInjector.NONE)) {
                t.saveCheckpointsTo(w, 4);
                t.train(m -> {
                    if (m.step == STEPS / 2 - 1) {
                        t.requestStop();
                    }
                });
                assertEquals(STEPS / 2, t.completedSteps());
                assertEquals(List.of(4L, 6L), t.savedCheckpoints().stream().map(r -> r.step()).toList(),
                    "rank " + rank + " saw both saves commit");
            }
            return null;
        });
        assertEquals(List.of(4L, 6L), new CheckpointStore(dir.resolve("job")).committedSteps());
        // 2 ranks with EP=2 continue the run to step 12.
        final List<Run> continued = RankThreads.run(2, 120, (rank, world) -> {
            try (Trainer t = trainer(expertParallel(2, rank, 2), world);
                 CheckpointWriter w = RankCheckpoints.writer(CheckpointConfig.defaults(dir.resolve("job"))
                     .withKeepLast(0), METADATA, t, FaultInjector.NONE)) {
                assertEquals(STEPS / 2, resume(t, dir.resolve("job")).step());
                t.saveCheckpointsTo(w, 4);
                final List<Double> losses = new ArrayList<>();
                t.train(m -> losses.add(m.loss));
                return new Run(losses, ownedParams(t));
            }
        });
        assertEquals(List.of(4L, 6L, 8L, 12L), new CheckpointStore(dir.resolve("job")).committedSteps());
        // The job that never changed shape: 2 ranks with EP=2 for all 12 steps.
        final List<Run> neverChanged = RankThreads.run(2, 120, (rank, world) -> {
            try (Trainer t = trainer(expertParallel(2, rank, 2), world)) {
                final List<Double> losses = trainTo(t, STEPS);
                return new Run(losses.subList(STEPS / 2, STEPS), ownedParams(t));
            }
        });
        // Equal within the expert-parallel tolerance: the resumed ranks sum gradients in another order only in the
        // first 6 steps (4 ranks instead of 2). Measured: losses of steps 7-12 within 2.4e-8, parameters within 7.8e-6.
        for (int rank = 0; rank < 2; rank++) {
            final Run a = neverChanged.get(rank);
            final Run b = continued.get(rank);
            for (int i = 0; i < a.losses().size(); i++) {
                assertEquals(a.losses().get(i), b.losses().get(i), 1e-6, "rank " + rank + ", loss of step " + (7 + i));
            }
            DataParallelEquivalenceTest.assertClose(a.params(), b.params(), 1e-4, "rank " + rank
                + ": the parameters it updates after step 12");
        }
    }

    record Run(List<Double> losses, float[] params) {
    }

    /** The parameters this rank updates (the others' experts are stale copies on an expert-parallel rank): 0 elsewhere. */
    static float[] ownedParams(final Trainer t) {
        final float[] out = new float[t.model().params().length];
        for (final io.moeflow.trainer.model.TensorView v : t.model().tensors()) {
            if (t.model().ownsTensor(v)) {
                System.arraycopy(t.model().params(), v.offset(), out, v.offset(), v.length());
            }
        }
        return out;
    }

    @Test
    void shouldRestartAnFp8JobBitForBitWithItsErrorFeedbackResiduals() throws Exception {
        final java.util.function.IntFunction<ParallelConfig> fp8 = rank -> new ParallelConfig(2, rank, 1,
            ParallelConfig.DEFAULT_BUCKET_BYTES, ParallelConfig.GradCompression.FP8);
        final List<float[]> straight = RankThreads.run(2, 120, (rank, world) -> {
            try (Trainer t = trainer(fp8.apply(rank), world)) {
                trainTo(t, STEPS);
                return t.model().params().clone();
            }
        });
        final List<float[]> residuals = RankThreads.run(2, 120, (rank, world) -> {
            try (Trainer t = trainer(fp8.apply(rank), world)) {
                trainTo(t, STEPS / 2);
                save(t, dir.resolve("fp8"), true);
                final float[] residual = new float[t.model().params().length];
                t.denseGradientBuckets().copyResidualTo(residual);
                return residual;
            }
        });
        final List<float[]> restarted = RankThreads.run(2, 120, (rank, world) -> {
            try (Trainer t = trainer(fp8.apply(rank), world)) {
                resume(t, dir.resolve("fp8"));
                final float[] residual = new float[t.model().params().length];
                t.denseGradientBuckets().copyResidualTo(residual);
                assertArrayEquals(residuals.get(rank), residual, "rank " + rank + "'s own residual restored");
                trainTo(t, STEPS);
                return t.model().params().clone();
            }
        });
        boolean nonZero = false;
        for (final float v : residuals.get(1)) {
            nonZero |= v != 0f;
        }
        assertTrue(nonZero, "FP8 left a residual to save");
        assertArrayEquals(straight.get(0), restarted.get(0), "FP8 job restarted at step 6 vs never stopped");
        assertArrayEquals(straight.get(1), restarted.get(1));
    }

    @Test
    void shouldContinueADataParallelJobInOneProcessFromItsShardedCheckpoint() throws Exception {
        // Two data-parallel ranks train 6 steps and save; the reference job trains 12 without stopping.
        final List<State> atSix = RankThreads.run(2, 120, (rank, world) -> {
            try (Trainer t = trainer(ParallelConfig.dataParallel(2, rank), world)) {
                trainTo(t, STEPS / 2);
                final State s = State.of(t);
                save(t, dir.resolve("dp"), true);
                return s;
            }
        });
        final List<float[]> straight = RankThreads.run(2, 120, (rank, world) -> {
            try (Trainer t = trainer(ParallelConfig.dataParallel(2, rank), world)) {
                trainTo(t, STEPS);
                return t.model().params().clone();
            }
        });
        // The same shape again (a restart): bit for bit the job that never stopped.
        final List<float[]> restarted = RankThreads.run(2, 120, (rank, world) -> {
            try (Trainer t = trainer(ParallelConfig.dataParallel(2, rank), world)) {
                assertEquals(STEPS / 2, resume(t, dir.resolve("dp")).step());
                State.of(t).assertSameAs(atSix.get(rank), "rank " + rank + " after the restart");
                trainTo(t, STEPS);
                return t.model().params().clone();
            }
        });
        assertArrayEquals(straight.get(0), restarted.get(0), "2 ranks, restarted at step 6, vs never stopped");
        assertArrayEquals(straight.get(1), restarted.get(1));
        final float[] single;
        try (Trainer t = trainer(ParallelConfig.SINGLE, null)) {
            trainTo(t, STEPS);
            single = t.model().params().clone();
        }
        try (Trainer t = trainer(ParallelConfig.SINGLE, null)) {
            resume(t, dir.resolve("dp"));
            State.of(t).assertSameAs(atSix.get(0), "one process loading the 2-rank checkpoint");
            trainTo(t, STEPS);
            // One process and 2 ranks sum the gradients in different orders (measured: at most 3.0e-4 apart here).
            DataParallelEquivalenceTest.assertClose(straight.get(0), t.model().params(), 1e-3,
                "parameters after 6 steps in 2 ranks and 6 more in one process, against 12 in 2 ranks");
        }
    }
}
