package io.moeflow.launcher;

import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;

import io.moeflow.checkpoint.CheckpointReader;
import io.moeflow.checkpoint.Resolution;
import io.moeflow.curriculum.Dataset;
import io.moeflow.trainer.Evaluator;
import io.moeflow.trainer.TrainingState;
import io.moeflow.trainer.kernels.Kernels;
import io.moeflow.trainer.model.MoeModel;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** {@code moeflow eval}: per-domain loss and exact-match accuracy of a checkpoint on held-out samples. */
@Command(name = "eval", mixinStandardHelpOptions = true, sortOptions = false,
    description = {"Evaluate a trained model on held-out samples: loss and exact-match accuracy per domain.",
        "By default the newest checkpoint of the latest run, on the held-out part of that run's data."})
public final class EvalCommand implements Callable<Integer> {
    @Mixin
    CheckpointChoice from;

    @Option(names = "--data", paramLabel = "FILE", split = ",",
        description = "Evaluate on these .jsonl or text files instead of the run's own data.")
    List<Path> data;

    @Option(names = "--skip-bad-samples", defaultValue = "false", description = "Skip malformed samples of --data.")
    boolean skipBadSamples;

    @Option(names = "--split", paramLabel = "SPLIT", defaultValue = "HELD_OUT",
        description = "Which samples: ${COMPLETION-CANDIDATES} (held_out = the 10%% never trained on). Default: ${DEFAULT-VALUE}")
    Split split;

    @Option(names = "--eval-samples", paramLabel = "N", defaultValue = "" + TrainDefaults.EVAL_SAMPLES,
        description = "Samples per domain, spread over the difficulty range. Default: ${DEFAULT-VALUE}")
    int evalSamples;

    @Option(names = "--batch-size", paramLabel = "B", defaultValue = "" + TrainDefaults.BATCH_SIZE,
        description = "Sequences per forward pass when computing the loss. Default: ${DEFAULT-VALUE}")
    int batchSize;

    @Option(names = "--threads", paramLabel = "N", description = "Worker threads. Default: the number of cores")
    Integer threads;

    /** Which part of the data to evaluate. */
    enum Split { HELD_OUT, ALL }

    @Override
    public Integer call() {
        if (evalSamples < 1) {
            throw new IllegalArgumentException("--eval-samples=" + evalSamples + " must be >= 1");
        }
        final Resolution found = from.find();
        try (CheckpointReader reader = CheckpointReader.open(found.directory())) {
            final Dataset all = data == null || data.isEmpty() ? SavedRun.trainOptions(reader).data.load() : files();
            final Dataset evaluated = split == Split.ALL ? all : all.heldOut();
            try (MoeModel model = new MoeModel(SavedRun.modelConfig(reader), batchSize,
                TrainDefaults.threads(threads), Kernels.FAST, 0)) {
                TrainingState.loadModel(reader, model);
                System.out.println("moeflow eval: " + SavedRun.describe(found));
                System.out.println("data: " + evaluated.size() + " " + split.name().toLowerCase().replace('_', '-')
                    + " samples of " + (data == null ? "the run's data" : data));
                System.out.print(EvalReport.table(new Evaluator(model).evaluate(evaluated, evalSamples)));
            }
        }
        return 0;
    }

    private Dataset files() {
        final DataOptions options = new DataOptions();
        options.files = data;
        options.skipBadSamples = skipBadSamples;
        return options.load();
    }
}
