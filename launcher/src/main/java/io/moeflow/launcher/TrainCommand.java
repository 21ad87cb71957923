package io.moeflow.launcher;

import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.LocalDateTime;
import java.time.format.DateTimeFormatter;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;

import io.moeflow.curriculum.CurriculumConfig;
import io.moeflow.curriculum.Dataset;
import io.moeflow.curriculum.Stage;
import io.moeflow.launcher.report.MetricsLog;
import io.moeflow.launcher.report.RunCharts;
import io.moeflow.launcher.report.TrainingProgress;
import io.moeflow.optimizer.AdamWConfig;
import io.moeflow.trainer.Evaluator;
import io.moeflow.trainer.StepMetrics;
import io.moeflow.trainer.Trainer;
import io.moeflow.trainer.TrainerConfig;
import io.moeflow.trainer.kernels.Kernels;
import io.moeflow.trainer.model.ModelConfig;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** {@code moeflow train}: trains a MoE model on the built-in dataset or your files. */
@Command(name = "train", mixinStandardHelpOptions = true, sortOptions = false, usageHelpAutoWidth = true,
    description = {"Train a Mixture-of-Experts language model in this process.",
        "Writes runs/<name>/: config.properties, metrics.jsonl, loss.png, expert-load.png, eval.json.",
        "Every option can also come from a properties file: --config job.properties (keys = option names without "
            + "dashes, e.g. steps=2000)."})
public final class TrainCommand implements Callable<Integer> {
    @Option(names = "--config", paramLabel = "FILE", description = "Read option values from this properties file.")
    Path config;

    @Option(names = "--steps", paramLabel = "N", defaultValue = "" + TrainDefaults.STEPS,
        description = "Optimizer steps to train. Default: ${DEFAULT-VALUE}")
    long steps;

    @Option(names = "--run-name", paramLabel = "NAME",
        description = "Name of the run directory under --runs-dir. Default: run-<date>-<time>")
    String runName;

    @Option(names = "--runs-dir", paramLabel = "DIR", defaultValue = "runs",
        description = "Where run directories go. Default: ${DEFAULT-VALUE}")
    Path runsDir;

    @Option(names = "--batch-size", paramLabel = "B", defaultValue = "" + TrainDefaults.BATCH_SIZE,
        description = "Sequences per step (each --seq-len + 1 tokens). Default: ${DEFAULT-VALUE}")
    int batchSize;

    @Option(names = "--seed", defaultValue = "" + TrainDefaults.SEED,
        description = "Seed of the model initialisation. Default: ${DEFAULT-VALUE}")
    long seed;

    @Option(names = "--threads", paramLabel = "N",
        description = "Worker threads (the training thread included). Default: the number of cores")
    Integer threads;

    @Option(names = "--kernels", paramLabel = "KIND", defaultValue = "FAST",
        description = "Kernels: ${COMPLETION-CANDIDATES} (reference = plain loops, slow, for debugging). "
            + "Default: ${DEFAULT-VALUE}")
    Kernels kernels;

    @Option(names = "--eval-samples", paramLabel = "N", defaultValue = "" + TrainDefaults.EVAL_SAMPLES,
        description = "Held-out samples per domain evaluated at the end (0 = no evaluation). Default: ${DEFAULT-VALUE}")
    int evalSamples;

    @Option(names = "--samples", paramLabel = "N", defaultValue = "4",
        description = "Generated samples printed at the end. Default: ${DEFAULT-VALUE}")
    int samples;

    @Mixin
    ModelOptions model;

    @Mixin
    OptimizerOptions optimizer;

    @Mixin
    CurriculumOptions curriculum;

    @Mixin
    DataOptions data;

    @Spec
    CommandSpec spec;

    @Override
    public Integer call() {
        final PrintStream out = System.out;

        // The configuration, every record validated before anything starts.
        final ModelConfig modelConfig = model.toConfig();
        final AdamWConfig adamWConfig = optimizer.toConfig();
        final TrainerConfig trainerConfig = new TrainerConfig(steps, batchSize,
            threads == null ? Runtime.getRuntime().availableProcessors() : threads, seed, optimizer.lrSchedule,
            optimizer.lr, optimizer.minLr, optimizer.warmupSteps, kernels);
        final CurriculumConfig curriculumConfig = curriculum.toConfig(steps, (long) batchSize * modelConfig.seqLen());

        // The data, split into training and held-out samples.
        final Dataset all = data.load();
        final Dataset training = all.training();
        final Dataset heldOut = all.heldOut();

        final Path runDir = RunDirectory.create(runsDir, runName != null ? runName
            : "run-" + LocalDateTime.now().format(DateTimeFormatter.ofPattern("yyyyMMdd-HHmmss")));
        final Map<String, String> resolved = ResolvedOptions.of(spec);
        ResolvedOptions.write(resolved, "moeflow train, resolved options", runDir.resolve("config.properties"));

        out.println("moeflow train: run " + runDir);
        out.print(ResolvedOptions.format(resolved));
        out.println(describe(modelConfig, trainerConfig, curriculumConfig, all, training, heldOut));

        final long startNs = System.nanoTime();
        try (Trainer trainer = new Trainer(trainerConfig, modelConfig, adamWConfig, curriculumConfig, training);
             MetricsLog metrics = new MetricsLog(runDir.resolve("metrics.jsonl"));
             TrainingProgress progress = new TrainingProgress(trainer.completedSteps(), steps, System.console() != null,
                 out)) {
            final RunSummary summary = new RunSummary(steps);
            trainer.train(m -> {
                metrics.append(m);
                progress.update(m);
                summary.add(m);
            });
            progress.close();
            final double seconds = (System.nanoTime() - startNs) / 1e9;
            out.println(summary.describe(seconds));

            final List<Path> charts = RunCharts.render(runDir.resolve("metrics.jsonl"), runDir, modelConfig.vocabSize());
            charts.forEach(c -> out.println("chart: " + c));

            if (evalSamples > 0) {
                final List<Evaluator.DomainResult> results = new Evaluator(trainer.model()).evaluate(heldOut, evalSamples);
                out.println();
                out.print(EvalReport.table(results));
                EvalReport.writeJson(results, runDir.resolve("eval.json"));
            }
            if (samples > 0) {
                out.println();
                out.print(EvalReport.samples(trainer.model(), heldOut, samples, seed));
            }
        }
        return 0;
    }

    private static String describe(final ModelConfig m, final TrainerConfig t, final CurriculumConfig c,
                                   final Dataset all, final Dataset training, final Dataset heldOut) {
        final StringBuilder s = new StringBuilder();
        s.append(String.format("model: %,d parameters, %,d active per token (%.1f%% of expert parameters), "
                + "%.2f MFLOP per token (forward + backward)%n", m.parameterCount(), m.activeParametersPerToken(),
            100.0 * (m.topK() + m.sharedExperts()) / (m.experts() + m.sharedExperts()), m.flopsPerToken() / 1e6));
        s.append(String.format("data: %s, %,d samples (%,d training, %,d held out), domains %s%n", all.source(),
            all.size(), training.size(), heldOut.size(), all.domains()));
        s.append(String.format("curriculum: %s", c.kind().name().toLowerCase()));
        if (c.kind() == CurriculumConfig.Kind.STAGED) {
            for (final Stage st : c.stages()) {
                s.append(String.format("%n  stage %-13s difficulty [%.2f, %.2f)  %s  lr %s", st.name(), st.minDifficulty(),
                    st.maxDifficulty(), st.lengthSteps() > 0 ? st.lengthSteps() + " steps" : st.lengthTokens() + " tokens",
                    Double.isNaN(st.lr()) ? "from --lr-schedule" : String.valueOf(st.lr())));
            }
        }
        s.append(String.format("%ntraining: %,d steps of %d x %d tokens on %d threads", t.steps(), t.batchSize(),
            m.seqLen(), t.threads()));
        return s.toString();
    }

    /** Running totals for the end-of-run summary. */
    static final class RunSummary {
        private final long steps;
        private final double[] recentLoss;
        private int recent;
        private double tokensPerSecondSum;
        private long counted;
        private double firstLoss = Double.NaN;

        RunSummary(final long steps) {
            this.steps = steps;
            this.recentLoss = new double[(int) Math.max(1, Math.min(100, steps / 20))];
        }

        void add(final StepMetrics m) {
            if (Double.isNaN(firstLoss)) {
                firstLoss = m.crossEntropy;
            }
            recentLoss[recent++ % recentLoss.length] = m.crossEntropy;
            tokensPerSecondSum += m.tokensPerSecond;
            counted++;
        }

        String describe(final double seconds) {
            final int n = Math.min(recent, recentLoss.length);
            double sum = 0;
            for (int i = 0; i < n; i++) {
                sum += recentLoss[i];
            }
            return String.format("done: %d steps in %.1f s, %.0f tokens/s on average; cross-entropy %.3f at the start, "
                    + "%.3f over the last %d steps (uniform guess: ln 256 = %.3f)", steps, seconds,
                counted == 0 ? 0 : tokensPerSecondSum / counted, firstLoss, sum / Math.max(1, n), n, Math.log(256));
        }
    }
}
