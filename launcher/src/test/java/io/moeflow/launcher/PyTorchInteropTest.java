package io.moeflow.launcher;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import io.moeflow.checkpoint.CheckpointReader;
import io.moeflow.checkpoint.CheckpointStore;
import io.moeflow.trainer.TrainingState;
import io.moeflow.trainer.kernels.Kernels;
import io.moeflow.trainer.model.MoeModel;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The checkpoint's weights load into the equivalent PyTorch module ({@code tools/pytorch/moeflow_torch.py},
 * {@code load_state_dict(strict=True)}) and give the same next-token logits as MoEFlow. Runs where python3 has torch
 * and h5py (CI installs them); skipped elsewhere.
 */
@Timeout(300)
class PyTorchInteropTest {
    private static final Path SCRIPT = Path.of("..", "tools", "pytorch", "moeflow_torch.py");
    private static final String PYTHON = "/usr/bin/python3";
    /** Float32 in two frameworks with different summation orders: agreement to 1e-4 of the largest logit. */
    private static final double TOLERANCE = 1e-4;

    @TempDir
    Path runs;

    @Test
    void shouldGiveTheSameLogitsInPyTorchAsInMoEFlow() throws Exception {
        assumeTrue(pythonHas("torch") && pythonHas("h5py"), "python3 with torch and h5py is not installed");
        // Sigmoid router with trained balancing biases and a shared expert: every kind of tensor is exercised.
        final CliRun trained = CliRun.of(CliRun.concat(CliRun.concat(new String[] {"train"}, CliRun.TINY),
            "--steps", "12", "--router-score", "sigmoid", "--bias-balancing", "--bias-update-rate", "0.01",
            "--shared-experts", "1", "--lr-schedule", "constant", "--lr", "3e-3", "--run-name", "torch",
            "--runs-dir", runs.toString(), "--eval-samples", "0", "--samples", "0"));
        assertEquals(0, trained.exitCode(), trained.err());
        final Path checkpoint = new CheckpointStore(runs.resolve("torch/checkpoints")).resolve(CheckpointStore.AUTO)
            .directory();
        final String prompt = "copy abc=";

        final float[] ours;
        try (CheckpointReader reader = CheckpointReader.open(checkpoint);
             MoeModel model = new MoeModel(SavedRun.modelConfig(reader), 1, 1, Kernels.FAST, 0)) {
            TrainingState.loadModel(reader, model);
            final byte[] bytes = prompt.getBytes(StandardCharsets.UTF_8);
            final int[] context = new int[bytes.length];
            for (int i = 0; i < bytes.length; i++) {
                context[i] = bytes[i] & 0xff;
            }
            ours = new float[model.config().vocabSize()];
            model.logits(context, context.length, ours);
            float bias = 0;
            for (final float b : model.expertBias(0)) {
                bias = Math.max(bias, Math.abs(b));
            }
            assertTrue(bias > 0, "the balancing biases should have moved, so that the test covers them");
        }
        final double[] theirs = torchLogits(checkpoint, prompt);
        assertEquals(ours.length, theirs.length);
        double max = 0;
        for (final float v : ours) {
            max = Math.max(max, Math.abs(v));
        }
        for (int v = 0; v < ours.length; v++) {
            assertEquals(ours[v], theirs[v], TOLERANCE * max, "logit of byte " + v);
        }
    }

    private static double[] torchLogits(final Path checkpoint, final String prompt) throws Exception {
        final Process p = new ProcessBuilder(PYTHON, SCRIPT.toString(), checkpoint.toString(), prompt)
            .redirectErrorStream(true).start();
        final String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(120, TimeUnit.SECONDS), "the PyTorch script did not finish");
        assertEquals(0, p.exitValue(), out);
        final List<Double> logits = new ArrayList<>();
        try (JsonParser json = new JsonFactory().createParser(out.substring(out.indexOf('{')))) {
            while (json.nextToken() != null) {
                if (json.currentToken() == JsonToken.VALUE_NUMBER_FLOAT || json.currentToken() == JsonToken.VALUE_NUMBER_INT) {
                    logits.add(json.getDoubleValue());
                }
            }
        }
        return logits.stream().mapToDouble(Double::doubleValue).toArray();
    }

    private static boolean pythonHas(final String module) {
        if (!Files.isExecutable(Path.of(PYTHON))) {
            return false;
        }
        try {
            final Process p = new ProcessBuilder(PYTHON, "-c", "import " + module).redirectErrorStream(true).start();
            p.getInputStream().readAllBytes();
            return p.waitFor(120, TimeUnit.SECONDS) && p.exitValue() == 0;
        } catch (final IOException e) {
            return false;
        } catch (final InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
    }
}
