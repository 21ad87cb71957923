package io.moeflow.trainer;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import io.moeflow.checkpoint.CheckpointFile;
import io.moeflow.checkpoint.CheckpointFormat;
import io.moeflow.checkpoint.CheckpointLayout;
import io.moeflow.checkpoint.CheckpointReader;
import io.moeflow.checkpoint.CheckpointWriter;
import io.moeflow.checkpoint.TensorSpec;
import io.moeflow.curriculum.CurriculumState;
import io.moeflow.optimizer.AdamW;
import io.moeflow.trainer.model.ModelConfig;
import io.moeflow.trainer.model.MoeModel;
import io.moeflow.trainer.model.TensorView;
import io.moeflow.trainer.parallel.ParallelConfig;
import io.moeflow.trainer.parallel.ParallelGroups;

/**
 * What a checkpoint of a training run holds, and how it maps to the trainer's state. Everything
 * needed to continue bit for bit:
 * <ul>
 *   <li>{@code model.h5}: every parameter under its PyTorch name and shape, plus the aux-free
 *       balancing biases {@code blocks.{l}.moe.router.expert_bias} [E] (a buffer in PyTorch terms);</li>
 *   <li>{@code state.h5}: {@code optimizer/exp_avg/<param>}, {@code optimizer/exp_avg_sq/<param>},
 *       {@code optimizer/step}; {@code trainer/completed_steps}; {@code curriculum/state} (position,
 *       stage, consumed samples and tokens, RNG state: {@link CurriculumState#NAMES});
 *       {@code counters/samples}, {@code counters/tokens}; {@code schedule/lr} (the last step's rate).</li>
 * </ul>
 * The learning-rate schedule is a pure function of the step, and the curriculum's RNG is the only
 * random source training draws from (the model's initialisation is overwritten by the saved
 * parameters), so these arrays are the whole state.
 */
public final class TrainingState {
    static final String OPTIMIZER_STEP = "optimizer/step";
    static final String COMPLETED_STEPS = "trainer/completed_steps";
    static final String CURRICULUM = "curriculum/state";
    static final String SAMPLES = "counters/samples";
    static final String TOKENS = "counters/tokens";
    static final String LR = "schedule/lr";
    private static final String EXPERTS = ".moe.experts.";

    private TrainingState() {
    }

    /** Every tensor of a checkpoint of this model. */
    public static CheckpointLayout layout(final ModelConfig config, final List<TensorView> tensors) {
        final CheckpointLayout.Builder b = CheckpointLayout.builder();
        for (final TensorView t : tensors) {
            b.float32(CheckpointFile.MODEL, t.name(), shape(t));
        }
        for (int l = 0; l < config.layers(); l++) {
            b.float32(CheckpointFile.MODEL, MoeModel.expertBiasName(l), config.experts());
        }
        for (final TensorView t : tensors) {
            b.float32(CheckpointFile.STATE, expAvgName(t), shape(t));
            b.float32(CheckpointFile.STATE, expAvgSqName(t), shape(t));
        }
        b.int64(CheckpointFile.STATE, OPTIMIZER_STEP);
        b.int64(CheckpointFile.STATE, COMPLETED_STEPS);
        b.int64(CheckpointFile.STATE, CURRICULUM, CurriculumState.NAMES.size());
        b.int64(CheckpointFile.STATE, SAMPLES);
        b.int64(CheckpointFile.STATE, TOKENS);
        b.float64(CheckpointFile.STATE, LR);
        return b.build();
    }

    /**
     * The tensors rank {@code parallel.rank()} writes into a sharded checkpoint (see {@link #writerOf}): the
     * replicated ones on rank 0, each routed expert's parameters and AdamW moments on the rank of the first
     * expert-replica group that holds it, so every tensor of {@link #layout} is written exactly once; plus the
     * rank's own {@code ranks/<k>/completed_steps}, so that no rank's part is empty.
     */
    public static CheckpointLayout rankLayout(final ModelConfig config, final List<TensorView> tensors,
                                              final ParallelConfig parallel) {
        final CheckpointLayout.Builder b = CheckpointLayout.builder();
        long params = 0;
        for (final TensorSpec t : layout(config, tensors).tensors()) {
            if (writerOf(t.name(), config.experts(), parallel.expertParallel()) == parallel.rank()) {
                b.add(t);
            }
        }
        for (final TensorView t : tensors) {
            params = Math.max(params, t.offset() + (long) t.length());
        }
        if (parallel.gradCompression() == ParallelConfig.GradCompression.FP8) {
            // This rank's FP8 error-feedback residual, in parameter-slab coordinates.
            b.float32(CheckpointFile.STATE, residualName(parallel.rank()), params);
        }
        return b.int64(CheckpointFile.STATE, rankStepsName(parallel.rank())).build();
    }

    /**
     * The world rank that writes tensor {@code name} in a job of expert-parallel degree {@code k}: for a routed
     * expert's parameter or moment ({@code ...moe.experts.{e}...}), rank {@code e / (E/k)}, its holder in the first
     * expert-replica group; for everything else (replicated on every rank) rank 0.
     */
    static int writerOf(final String name, final int experts, final int k) {
        final int e = expertOf(name);
        return e < 0 ? 0 : e / (experts / k);
    }

    /** The routed expert a tensor name belongs to, or -1 ({@code blocks.{l}.moe.experts.{e}.*}, moments too). */
    static int expertOf(final String name) {
        final int at = name.indexOf(EXPERTS);
        if (at < 0) {
            return -1;
        }
        final int from = at + EXPERTS.length();
        return Integer.parseInt(name.substring(from, name.indexOf('.', from)));
    }

    /**
     * Job properties for the metadata of a sharded checkpoint: the expert-parallel degree and which world ranks hold
     * each routed expert ({@code expert_owners=0:0,2 1:0,2 2:1,3 ...}); the checkpoint module stores them as given.
     */
    public static Map<String, String> shardProperties(final ModelConfig config, final ParallelConfig parallel) {
        final int k = parallel.expertParallel();
        final int perRank = config.experts() / k;
        final StringBuilder owners = new StringBuilder();
        for (int e = 0; e < config.experts(); e++) {
            owners.append(e == 0 ? "" : " ").append(e).append(':');
            for (int replica = 0; replica < parallel.expertReplicas(); replica++) {
                owners.append(replica == 0 ? "" : ",").append(replica * k + e / perRank);
            }
        }
        final Map<String, String> properties = new LinkedHashMap<>();
        properties.put("expert_parallel", String.valueOf(k));
        properties.put("expert_owners", owners.toString());
        return properties;
    }

    /** Copies the trainer's state into a snapshot: the tensors of the writer's layout (all, or this rank's share). */
    static void put(final CheckpointWriter.Snapshot s, final Trainer trainer) {
        final MoeModel model = trainer.model();
        final AdamW optimizer = trainer.optimizer();
        for (final TensorView t : model.tensors()) {
            if (s.holds(CheckpointFile.MODEL, t.name())) {
                s.float32(CheckpointFile.MODEL, t.name(), model.params(), t.offset());
            }
            if (s.holds(CheckpointFile.STATE, expAvgName(t))) {
                s.float32(CheckpointFile.STATE, expAvgName(t), optimizer.expAvg(), t.offset());
                s.float32(CheckpointFile.STATE, expAvgSqName(t), optimizer.expAvgSq(), t.offset());
            }
        }
        for (int l = 0; l < model.config().layers(); l++) {
            if (s.holds(CheckpointFile.MODEL, MoeModel.expertBiasName(l))) {
                s.float32(CheckpointFile.MODEL, MoeModel.expertBiasName(l), model.expertBias(l), 0);
            }
        }
        final String rankSteps = rankStepsName(trainer.parallelConfig().rank());
        if (s.holds(CheckpointFile.STATE, rankSteps)) {
            s.int64(CheckpointFile.STATE, rankSteps, trainer.completedSteps());
        }
        final String residual = residualName(trainer.parallelConfig().rank());
        if (s.holds(CheckpointFile.STATE, residual)) {
            final float[] slab = new float[model.params().length]; // once per save, not per step
            trainer.denseGradientBuckets().copyResidualTo(slab);
            s.float32(CheckpointFile.STATE, residual, slab, 0);
        }
        if (!s.holds(CheckpointFile.STATE, OPTIMIZER_STEP)) {
            return; // the replicated scalars are rank 0's to write
        }
        s.int64(CheckpointFile.STATE, OPTIMIZER_STEP, optimizer.stepCount());
        s.int64(CheckpointFile.STATE, COMPLETED_STEPS, trainer.completedSteps());
        final CurriculumState c = trainer.curriculum().state();
        s.int64(CheckpointFile.STATE, CURRICULUM, c.toLongs(), 0);
        s.int64(CheckpointFile.STATE, SAMPLES, c.samplesConsumed());
        s.int64(CheckpointFile.STATE, TOKENS, c.tokensConsumed());
        s.float64(CheckpointFile.STATE, LR, trainer.lastLr());
    }

    /**
     * Loads a checkpoint into the trainer: parameters, balancing biases, AdamW moments and step,
     * curriculum position and RNG, sample and token counters, the last learning rate, step counter.
     * Each tensor is read once, its checksum checked as it is read; the layout is checked before
     * anything is read. Every piece of state is set, so after a failed load (a damaged tensor)
     * loading another checkpoint leaves nothing of the first behind
     * ({@link io.moeflow.checkpoint.CheckpointStore#loadAuto} relies on it).
     *
     * @throws io.moeflow.checkpoint.CheckpointException if the checkpoint is damaged or was written for another model
     *         (the message names the first tensor whose shape differs)
     */
    static void restore(final CheckpointReader reader, final Trainer trainer) {
        final MoeModel model = trainer.model();
        reader.checkLayout(layout(model.config(), model.tensors()));
        loadModel(reader, model);
        final AdamW optimizer = trainer.optimizer();
        final float[] expAvg = new float[optimizer.slabLength()];
        final float[] expAvgSq = new float[optimizer.slabLength()];
        // Loading plans by name: each rank reads the moments of the parameters it updates (every one in one process,
        // its own experts with expert parallelism), whichever rank of whichever job shape wrote them.
        final ParallelGroups groups = trainer.groups();
        for (final TensorView t : model.tensors()) {
            final int e = expertOf(t.name());
            if ((e >= 0 && !groups.holdsExpert(e)) || t.offset() + t.length() > expAvg.length) {
                continue;
            }
            reader.readFloat32(CheckpointFile.STATE, expAvgName(t), expAvg, t.offset());
            reader.readFloat32(CheckpointFile.STATE, expAvgSqName(t), expAvgSq, t.offset());
        }
        optimizer.restore(reader.int64(CheckpointFile.STATE, OPTIMIZER_STEP), expAvg, expAvgSq);
        final long[] curriculum = new long[CurriculumState.NAMES.size()];
        reader.readInt64(CheckpointFile.STATE, CURRICULUM, curriculum, 0);
        // The run's counters are the saved ones: counters/* are authoritative over the curriculum's own copies.
        final CurriculumState c = CurriculumState.fromLongs(curriculum);
        trainer.curriculum().restore(new CurriculumState(c.step(), c.stageIndex(), c.stepsInStage(), c.tokensInStage(),
            reader.int64(CheckpointFile.STATE, SAMPLES), reader.int64(CheckpointFile.STATE, TOKENS), c.rngState(),
            c.currentDifficulty(), c.datasetFingerprint(), c.configFingerprint()));
        trainer.restoreCompletedSteps(reader.int64(CheckpointFile.STATE, COMPLETED_STEPS));
        trainer.restoreLastLr(reader.float64(CheckpointFile.STATE, LR));
        restoreResidual(reader, trainer);
    }

    /**
     * The FP8 error-feedback residual is rank state: restored when the checkpoint was written by a job of the same
     * world size with FP8 (a restart); after a change of shape, or into a run without FP8, it starts from zero.
     */
    private static void restoreResidual(final CheckpointReader reader, final Trainer trainer) {
        final ParallelConfig parallel = trainer.parallelConfig();
        final float[] slab = new float[trainer.model().params().length];
        final String name = residualName(parallel.rank());
        final int savedWorld = reader.shardedMetadata().map(m -> m.worldSize()).orElse(1);
        if (trainer.denseGradientBuckets() == null || !trainer.denseGradientBuckets().compressed()) {
            return;
        }
        if (savedWorld == parallel.worldSize() && reader.tensor(CheckpointFile.STATE, name).isPresent()) {
            reader.readFloat32(CheckpointFile.STATE, name, slab, 0);
        }
        trainer.denseGradientBuckets().restoreResidualFrom(slab);
    }

    /** A rank's FP8 error-feedback residual in a sharded checkpoint. */
    static String residualName(final int rank) {
        return CheckpointFormat.RANK_STATE_PREFIX + rank + "/fp8_residual";
    }

    /** Loads only the weights and balancing biases (for evaluation and generation). */
    public static void loadModel(final CheckpointReader reader, final MoeModel model) {
        for (final TensorView t : model.tensors()) {
            reader.readFloat32(CheckpointFile.MODEL, t.name(), model.params(), t.offset());
        }
        for (int l = 0; l < model.config().layers(); l++) {
            reader.readFloat32(CheckpointFile.MODEL, MoeModel.expertBiasName(l), model.expertBias(l), 0);
        }
    }

    /** A rank's own step count in a sharded checkpoint. */
    static String rankStepsName(final int rank) {
        return CheckpointFormat.RANK_STATE_PREFIX + rank + "/completed_steps";
    }

    /** The AdamW first moment of parameter {@code t} in state.h5. */
    private static String expAvgName(final TensorView t) {
        return "optimizer/" + AdamW.STATE_EXP_AVG + "/" + t.name();
    }

    /** The AdamW second moment of parameter {@code t} in state.h5. */
    private static String expAvgSqName(final TensorView t) {
        return "optimizer/" + AdamW.STATE_EXP_AVG_SQ + "/" + t.name();
    }

    private static long[] shape(final TensorView t) {
        final int[] dims = t.shape();
        final long[] s = new long[dims.length];
        for (int i = 0; i < s.length; i++) {
            s[i] = dims[i];
        }
        return s;
    }
}
