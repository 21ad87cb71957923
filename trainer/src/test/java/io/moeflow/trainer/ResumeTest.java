package io.moeflow.trainer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import io.moeflow.checkpoint.CheckpointConfig;
import io.moeflow.checkpoint.CheckpointException;
import io.moeflow.checkpoint.CheckpointFile;
import io.moeflow.checkpoint.CheckpointReader;
import io.moeflow.checkpoint.CheckpointStore;
import io.moeflow.checkpoint.CheckpointWriter;
import io.moeflow.checkpoint.FaultInjector;
import io.moeflow.checkpoint.Resolution;
import io.moeflow.checkpoint.RunMetadata;
import io.moeflow.checkpoint.SaveStage;
import io.moeflow.curriculum.CurriculumConfig;
import io.moeflow.curriculum.Dataset;
import io.moeflow.optimizer.AdamWConfig;
import io.moeflow.trainer.TrainerConfig.LrScheduleKind;
import io.moeflow.trainer.kernels.Kernels;
import io.moeflow.trainer.model.ModelConfig;
import io.moeflow.trainer.model.RouterScore;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** Exact resume: N steps, stop, resume, N more steps equals 2N uninterrupted steps, bit for bit. */
@Timeout(180)
class ResumeTest {
    private static final int STEPS = 24;
    private final Dataset data = TinyRuns.builtin().training();
    // Staged curriculum with its own rates, sigmoid router with aux-free biases: every piece of state matters.
    private final ModelConfig model = new ModelConfig(256, 32, 32, 2, 2, 4, 2, 64, 1, RouterScore.SIGMOID, 0.01, 0.001,
        true, 1e-3, 0.0, 0.02);
    private final TrainerConfig config = new TrainerConfig(STEPS, 8, 2, 7, LrScheduleKind.CURRICULUM, 1e-3, 0, 3,
        Kernels.FAST);

    @TempDir
    Path dir;

    @Test
    void shouldResumeBitwiseAfterAStop() {
        final Run uninterrupted = run("straight", null, STEPS, FaultInjector.NONE, true);

        final Run first = run("stopped", null, STEPS / 2, FaultInjector.NONE, true);
        assertEquals(STEPS / 2, first.losses.size());
        final Run second = run("stopped", dir.resolve("stopped"), STEPS, FaultInjector.NONE, true);

        final List<Double> resumed = new ArrayList<>(first.losses);
        resumed.addAll(second.losses);
        assertEquals(uninterrupted.losses, resumed, "loss sequence of stop + resume vs uninterrupted");
        assertArrayEquals(uninterrupted.params, second.params, "parameters after the last step");
        assertArrayEquals(uninterrupted.expertBias, second.expertBias, "aux-free balancing biases");
    }

    @Test
    void shouldResumeFromThePreviousCheckpointWhenASaveCrashes() {
        final Run uninterrupted = run("straight", null, STEPS, FaultInjector.NONE, false);
        // Save every 4 steps; the save of step 12 dies just before its commit (the rename).
        final FaultInjector crashAt12 = (stage, step, path) -> {
            if (stage == SaveStage.BEFORE_RENAME && step == 12) {
                throw new IOException("injected crash before the commit of step 12");
            }
        };
        final CheckpointException crash = assertThrows(CheckpointException.class,
            () -> run("crashed", null, STEPS, crashAt12, false));
        assertTrue(crash.getMessage().contains("12"), crash.getMessage());

        final Resolution auto = new CheckpointStore(dir.resolve("crashed")).resolve(CheckpointStore.AUTO);
        assertEquals(8, auto.step(), "the last complete checkpoint before the crashed save");
        final Run resumed = run("crashed", dir.resolve("crashed"), STEPS, FaultInjector.NONE, false);
        assertEquals(uninterrupted.losses.subList(8, STEPS), resumed.losses, "losses of steps 9..24 after the resume");
        assertArrayEquals(uninterrupted.params, resumed.params);
    }

    @Test
    void shouldRestoreTheLearningRateAndCountersReadingEachTensorOnce() {
        final List<Double> lrs = new ArrayList<>();
        final long[] counters = new long[2];
        try (Trainer trainer = newTrainer(); CheckpointWriter writer = writer(trainer, "counted", FaultInjector.NONE, false)) {
            trainer.saveCheckpointsTo(writer, 0);
            trainer.train(m -> {
                lrs.add(m.lr);
                counters[0] = m.samplesConsumed;
                counters[1] = m.tokensConsumed;
                if (m.step == 5) {
                    trainer.requestStop();
                }
            });
            // A second save of step 5 whose counters differ from the curriculum's copies: the saved counters win.
            final CheckpointWriter.Snapshot s = writer.begin(5);
            TrainingState.put(s, trainer);
            s.int64(CheckpointFile.STATE, TrainingState.SAMPLES, counters[0] + 1000);
            s.int64(CheckpointFile.STATE, TrainingState.TOKENS, counters[1] + 2000);
            writer.commit(s);
        }
        try (Trainer resumed = newTrainer()) {
            assertEquals(0.0, resumed.lastLr());
            final long[] bytes = new long[2];
            final Resolution r = new CheckpointStore(dir.resolve("counted")).loadAuto(reader -> {
                resumed.restore(reader);
                bytes[0] = reader.dataBytesRead();
                bytes[1] = reader.dataBytes();
            }).orElseThrow();
            assertEquals(5, r.step());
            assertEquals(bytes[1], bytes[0], "a resume reads every tensor exactly once");
            assertEquals(lrs.get(4), resumed.lastLr(), "schedule/lr restored");
            assertEquals(counters[0] + 1000, resumed.curriculum().state().samplesConsumed(), "counters/samples");
            assertEquals(counters[1] + 2000, resumed.curriculum().state().tokensConsumed(), "counters/tokens");
            final long[] next = new long[1];
            resumed.train(m -> {
                next[0] = m.tokensConsumed;
                resumed.requestStop();
            });
            assertEquals(counters[1] + 2000 + 8 * 32, next[0], "step 6 counts on from the restored tokens");
        }
    }

    @Test
    void shouldNameTheFirstMismatchingTensorWhenTheModelDiffers() {
        run("small", null, 4, FaultInjector.NONE, true);
        final ModelConfig wider = new ModelConfig(256, 32, 48, 2, 2, 4, 2, 64, 1, RouterScore.SIGMOID, 0.01, 0.001, true,
            1e-3, 0.0, 0.02);
        try (Trainer other = new Trainer(config, wider, AdamWConfig.defaults(), CurriculumConfig.defaults(STEPS), data);
             CheckpointReader reader = CheckpointReader.open(
                 new CheckpointStore(dir.resolve("small")).resolve(CheckpointStore.AUTO).directory())) {
            final CheckpointException e = assertThrows(CheckpointException.class, () -> other.restore(reader));
            assertTrue(e.getMessage().contains("wte.weight") && e.getMessage().contains("256, 48")
                && e.getMessage().contains("256, 32"), e.getMessage());
        }
    }

    private Trainer newTrainer() {
        return new Trainer(config, model, AdamWConfig.defaults(), CurriculumConfig.defaults(STEPS), data);
    }

    private CheckpointWriter writer(final Trainer trainer, final String saveTo, final FaultInjector faults,
                                    final boolean async) {
        final CheckpointConfig checkpointConfig = CheckpointConfig.defaults(dir.resolve(saveTo))
            .withAsyncSave(async).withKeepLast(0);
        return new CheckpointWriter(checkpointConfig, TrainingState.layout(model, trainer.model().tensors()),
            new RunMetadata("test", "test", RunMetadata.UNKNOWN, "17", 1, Map.of()), faults,
            java.time.Clock.systemUTC());
    }

    private record Run(List<Double> losses, float[] params, float[] expertBias) {
    }

    /**
     * Trains (resuming from {@code resumeFrom} when given) until step {@code stopAt}, saving every 4
     * steps into {@code dir/<saveTo>}.
     */
    private Run run(final String saveTo, final Path resumeFrom, final long stopAt, final FaultInjector faults,
                    final boolean async) {
        try (Trainer trainer = newTrainer(); CheckpointWriter writer = writer(trainer, saveTo, faults, async)) {
            if (resumeFrom != null) {
                new CheckpointStore(resumeFrom).loadAuto(trainer::restore).orElseThrow();
            }
            trainer.saveCheckpointsTo(writer, 4);
            final List<Double> losses = new ArrayList<>();
            trainer.train(m -> {
                losses.add(m.loss);
                if (m.step == stopAt) {
                    trainer.requestStop();
                }
            });
            final float[] bias = new float[model.layers() * model.experts()];
            for (int l = 0; l < model.layers(); l++) {
                System.arraycopy(trainer.model().expertBias(l), 0, bias, l * model.experts(), model.experts());
            }
            return new Run(losses, trainer.model().params().clone(), bias);
        }
    }
}
