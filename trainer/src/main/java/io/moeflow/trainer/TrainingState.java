package io.moeflow.trainer;

import java.util.List;

import io.moeflow.checkpoint.CheckpointFile;
import io.moeflow.checkpoint.CheckpointLayout;
import io.moeflow.checkpoint.CheckpointReader;
import io.moeflow.checkpoint.CheckpointWriter;
import io.moeflow.curriculum.CurriculumState;
import io.moeflow.optimizer.AdamW;
import io.moeflow.trainer.model.ModelConfig;
import io.moeflow.trainer.model.MoeModel;
import io.moeflow.trainer.model.TensorView;

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

    /** Copies the trainer's state into a snapshot (the writer copies it into its staging buffers). */
    static void put(final CheckpointWriter.Snapshot s, final Trainer trainer) {
        final MoeModel model = trainer.model();
        final AdamW optimizer = trainer.optimizer();
        for (final TensorView t : model.tensors()) {
            s.float32(CheckpointFile.MODEL, t.name(), model.params(), t.offset());
            s.float32(CheckpointFile.STATE, expAvgName(t), optimizer.expAvg(), t.offset());
            s.float32(CheckpointFile.STATE, expAvgSqName(t), optimizer.expAvgSq(), t.offset());
        }
        for (int l = 0; l < model.config().layers(); l++) {
            s.float32(CheckpointFile.MODEL, MoeModel.expertBiasName(l), model.expertBias(l), 0);
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
        for (final TensorView t : model.tensors()) {
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
