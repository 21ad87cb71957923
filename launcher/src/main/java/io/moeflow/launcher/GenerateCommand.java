package io.moeflow.launcher;

import java.util.concurrent.Callable;

import io.moeflow.checkpoint.CheckpointReader;
import io.moeflow.checkpoint.Resolution;
import io.moeflow.trainer.TextGenerator;
import io.moeflow.trainer.TrainingState;
import io.moeflow.trainer.kernels.Kernels;
import io.moeflow.trainer.model.MoeModel;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** {@code moeflow generate}: samples text from a trained model. */
@Command(name = "generate", mixinStandardHelpOptions = true, sortOptions = false,
    description = "Continue a prompt with a trained model (by default the newest checkpoint of the latest run).")
public final class GenerateCommand implements Callable<Integer> {
    @Option(names = "--prompt", paramLabel = "TEXT", defaultValue = "",
        description = "Text to continue. Built-in tasks look like '12+34=', 'copy abc=', 'reverse abc=', 'seq abab='.")
    String prompt;

    @Mixin
    CheckpointChoice from;

    @Option(names = "--max-tokens", paramLabel = "N", defaultValue = "200",
        description = "Bytes to generate at most. Default: ${DEFAULT-VALUE}")
    int maxTokens;

    @Option(names = "--temperature", paramLabel = "T", defaultValue = "0.8",
        description = "Sampling temperature; 0 = greedy. Default: ${DEFAULT-VALUE}")
    double temperature;

    @Option(names = "--top-k", paramLabel = "K", defaultValue = "40",
        description = "Sample among the K most likely bytes (0 = all). Default: ${DEFAULT-VALUE}")
    int topK;

    @Option(names = "--seed", paramLabel = "SEED", defaultValue = "1", description = "Sampling seed. Default: ${DEFAULT-VALUE}")
    long seed;

    @Option(names = "--stop-at-newline", defaultValue = "false",
        description = "Stop after the first generated newline (one answer to a built-in task).")
    boolean stopAtNewline;

    @Override
    public Integer call() {
        if (maxTokens < 1) {
            throw new IllegalArgumentException("--max-tokens=" + maxTokens + " must be >= 1");
        }
        final Resolution found = from.find();
        try (CheckpointReader reader = CheckpointReader.open(found.directory());
             MoeModel model = new MoeModel(SavedRun.modelConfig(reader), 1, 1, Kernels.FAST, 0)) {
            TrainingState.loadModel(reader, model);
            System.err.println("moeflow generate: " + SavedRun.describe(found));
            final String text = new TextGenerator(model, seed).generate(prompt, maxTokens, temperature, topK, stopAtNewline);
            System.out.println(prompt + text);
        }
        return 0;
    }
}
