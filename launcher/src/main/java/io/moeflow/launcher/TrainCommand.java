package io.moeflow.launcher;

import java.io.IOException;
import java.io.PrintStream;
import java.io.Reader;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalLong;
import java.util.Properties;
import java.util.concurrent.Callable;

import io.moeflow.checkpoint.CheckpointConfig;
import io.moeflow.checkpoint.CheckpointStore;
import io.moeflow.checkpoint.CheckpointWriter;
import io.moeflow.checkpoint.FaultInjector;
import io.moeflow.checkpoint.Resolution;
import io.moeflow.checkpoint.RunMetadata;
import io.moeflow.checkpoint.SaveResult;
import io.moeflow.curriculum.CurriculumConfig;
import io.moeflow.curriculum.Dataset;
import io.moeflow.curriculum.Stage;
import io.moeflow.launcher.launch.WorkerSession;
import io.moeflow.launcher.report.MetricsLog;
import io.moeflow.launcher.report.RunCharts;
import io.moeflow.launcher.report.TrainingProgress;
import io.moeflow.optimizer.AdamWConfig;
import io.moeflow.trainer.Evaluator;
import io.moeflow.trainer.ModelConfigCodec;
import io.moeflow.trainer.RankCheckpoints;
import io.moeflow.trainer.StepMetrics;
import io.moeflow.trainer.Trainer;
import io.moeflow.trainer.TrainerConfig;
import io.moeflow.trainer.kernels.Kernels;
import io.moeflow.trainer.model.ModelConfig;
import io.moeflow.trainer.parallel.ParallelConfig;
import io.moeflow.transport.TransportCounters;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** {@code moeflow train}: trains a MoE model on the built-in dataset or your files. */
@Command(name = "train", mixinStandardHelpOptions = true, sortOptions = false, usageHelpAutoWidth = true,
    description = {"Train a Mixture-of-Experts language model in this process.",
        "Writes runs/<name>/: config.properties, metrics.jsonl, loss.png, expert-load.png, eval.json and "
            + "checkpoints/step-<N>/ (HDF5).",
        "Every option can also come from a properties file: --config job.properties (keys = option names without "
            + "dashes, e.g. steps=2000)."})
public final class TrainCommand implements Callable<Integer> {
    @Option(names = "--config", paramLabel = "FILE", description = "Read option values from this properties file.")
    Path config;

    @Option(names = "--steps", paramLabel = "N", defaultValue = "" + TrainDefaults.STEPS,
        description = "Optimizer steps to train. Default: ${DEFAULT-VALUE}")
    long steps;

    @Option(names = "--plan-steps", paramLabel = "N",
        description = "The run length the schedules are planned for: stage lengths in %%, pacing and the cosine decay "
            + "scale with it. Default: --steps; a resumed run keeps its own, so --resume auto --steps M beyond it "
            + "extends the run (stages stay at their absolute steps, the last one continues).")
    Long planSteps;

    @Option(names = "--run-name", paramLabel = "NAME",
        description = "Name of the run directory under --runs-dir. Default: run-<date>-<time>")
    String runName;

    @Option(names = "--runs-dir", paramLabel = "DIR", defaultValue = TrainDefaults.RUNS_DIR,
        description = "Where run directories go. Default: ${DEFAULT-VALUE}")
    Path runsDir;

    @Option(names = "--batch-size", paramLabel = "B", defaultValue = "" + TrainDefaults.BATCH_SIZE,
        description = "Sequences per step (each --seq-len + 1 tokens). Default: ${DEFAULT-VALUE}")
    int batchSize;

    @Option(names = "--seed", paramLabel = "SEED", defaultValue = "" + TrainDefaults.SEED,
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

    @Option(names = "--eval-every", paramLabel = "N", defaultValue = "" + TrainDefaults.EVAL_EVERY,
        description = "Log the held-out loss (eval_loss in metrics.jsonl, red in loss.png) every N steps (0 = never). "
            + "Default: ${DEFAULT-VALUE}")
    long evalEvery;

    @Option(names = "--samples", paramLabel = "N", defaultValue = "4",
        description = "Generated samples printed at the end. Default: ${DEFAULT-VALUE}")
    int samples;

    @Option(names = "--save-every", paramLabel = "N", defaultValue = "" + TrainDefaults.SAVE_EVERY,
        description = "Save a checkpoint every N steps into runs/<name>/checkpoints/step-<N>/ (0 = only at the end; "
            + "one is always saved at the end and when the run is interrupted). Default: ${DEFAULT-VALUE}")
    long saveEvery;

    @Option(names = "--keep-last", paramLabel = "K", defaultValue = "" + CheckpointConfig.DEFAULT_KEEP_LAST,
        description = "Keep the K newest checkpoints, delete older ones once a new one is complete (0 = keep all). "
            + "Default: ${DEFAULT-VALUE}")
    int keepLast;

    @Option(names = "--async-save", paramLabel = "BOOL", defaultValue = "" + CheckpointConfig.DEFAULT_ASYNC_SAVE,
        arity = "0..1", description = "Write checkpoints in the background; training waits only for a memory copy. "
            + "Default: ${DEFAULT-VALUE}")
    boolean asyncSave;

    @Option(names = "--resume", paramLabel = "auto|DIR",
        description = "Continue a run: 'auto' = the newest complete checkpoint of --run-name (a fresh start if it has "
            + "none), or a checkpoint directory. The run's saved config.properties supplies every option not given.")
    String resume;

    /** Test hook: kill this JVM (halt, like kill -9) when a save reaches STAGE at STEP, e.g. BEFORE_RENAME:400. */
    @Option(names = "--fault-at", hidden = true)
    String faultAt;

    @Mixin
    ModelOptions model;

    @Mixin
    OptimizerOptions optimizer;

    @Mixin
    CurriculumOptions curriculum;

    @Mixin
    DataOptions data;

    @Mixin
    ParallelOptions parallel;

    @Spec
    CommandSpec spec;

    /** This process's part in a job started by {@code moeflow launch}; null in a one-process run. */
    private WorkerSession session;

    @Override
    public Integer call() throws InterruptedException {
        // A worker of `moeflow launch` (its agent set MOEFLOW_RUN_ID and the torchrun variables): join the job first.
        final Optional<WorkerSession.Environment> launched = WorkerSession.Environment.current();
        if (launched.isEmpty()) {
            return trainThisProcess();
        }
        try (WorkerSession joined = WorkerSession.join(launched.get())) {
            session = joined;
            return trainThisProcess();
        } catch (final IOException e) {
            System.err.println("moeflow train: rank " + launched.get().rank() + ": " + e.getMessage());
            return 3;
        }
    }

    /** This process's place in the job: one process, or a rank of a launched job (data parallel). */
    private ParallelConfig parallelConfig() {
        if (session == null) {
            // A job's --expert-parallel saved in its config does not bind a one-process resume: it loads every expert.
            if (resume == null || spec.commandLine().getParseResult().hasMatchedOption("--expert-parallel")) {
                parallel.checkSingleProcess();
            }
            return ParallelConfig.SINGLE;
        }
        return parallel.toConfig(session.worldSize(), session.rank());
    }

    /** Rank 0 of a job, or a one-process run: the process that writes the run directory's files. */
    private boolean writesRunFiles() {
        return session == null || session.rank() == 0;
    }

    private Integer trainThisProcess() {
        final PrintStream out = System.out;

        // The configuration, every record validated before anything starts.
        final ModelConfig modelConfig = model.toConfig();
        final AdamWConfig adamWConfig = optimizer.toConfig();
        // The plan is fixed when a run starts: extending it (a larger --steps on resume) keeps stages in absolute steps.
        planSteps = planSteps != null ? planSteps : savedPlanSteps().orElse(steps);
        final TrainerConfig trainerConfig = new TrainerConfig(steps, batchSize,
            TrainDefaults.threads(threads), seed, optimizer.lrSchedule,
            optimizer.lr, optimizer.minLr, optimizer.warmupSteps(planSteps), kernels, planSteps);
        final CurriculumConfig curriculumConfig = curriculum.toConfig(planSteps);

        // The data, split into training and held-out samples.
        final Dataset all = data.load();
        final Dataset training = all.training();
        final Dataset heldOut = all.heldOut();

        final FaultInjector faults = FaultAt.parse(faultAt);

        final long startNs = System.nanoTime();
        // The trainer (model, optimizer, curriculum) is built before the run directory exists, so that a setting
        // it rejects leaves nothing behind and the same --run-name can be used again.
        try (Trainer trainer = new Trainer(trainerConfig, modelConfig, adamWConfig, curriculumConfig, training, parallelConfig(),
            session == null ? null : session.communicator())) {
            final Path runDir = runDirectory();
            final Map<String, String> resolved = ResolvedOptions.of(spec);
            final String configText = ResolvedOptions.text(resolved, "moeflow train, resolved options");
            out.println("moeflow train: run " + runDir + (session == null ? ""
                : " (rank " + session.rank() + " of " + session.worldSize() + ", launched, pid " + ProcessHandle.current().pid() + ")"));
            out.print(ResolvedOptions.format(resolved));
            out.println(describe(modelConfig, trainerConfig, curriculumConfig, all, data.skipped, training, heldOut));
            // In a job every rank writes its part of each checkpoint and rank 0 commits it (collective: all ranks construct it).
            try (CheckpointWriter checkpoints = checkpointWriter(runDir, trainer, configText, faults)) {
                checkpoints.removedAtStart().forEach(p -> out.println("checkpoint: removed " + p
                    + " (left behind by an interrupted save of a process that is gone)"));
                return train(trainer, checkpoints, runDir, configText, heldOut, startNs, out);
            }
        }
    }

    /** Resumes if asked, trains, then reports: summary, charts, evaluation, samples. Returns the exit code. */
    private int train(final Trainer trainer, final CheckpointWriter checkpoints, final Path runDir,
                      final String configText, final Dataset heldOut, final long startNs, final PrintStream out) {
        resumeIfAsked(runDir, trainer, out);
        // Written once the options are known to work with the run's checkpoint: a refused resume changes nothing.
        if (writesRunFiles()) {
            ResolvedOptions.write(configText, runDir.resolve("config.properties"));
        }
        trainer.saveCheckpointsTo(checkpoints, saveEvery);
        if (evalEvery > 0) {
            trainer.evaluateEvery(heldOut, evalEvery, TrainDefaults.EVAL_LOSS_SAMPLES);
        }
        final Path metricsFile = runDir.resolve("metrics.jsonl");
        if (writesRunFiles()) {
            MetricsLog.truncateAfter(metricsFile, trainer.completedSteps());
        }

        final boolean finished;
        final RunSummary summary = new RunSummary(trainer.completedSteps(), steps);
        try (MetricsLog metrics = writesRunFiles() ? new MetricsLog(metricsFile) : null;
             TrainingProgress progress = new TrainingProgress(trainer.completedSteps(), steps,
                 System.console() != null, out);
             StopOnSignal stop = new StopOnSignal(trainer, "continue with: " + resumeCommand(runDir))) {
            finished = trainer.train(m -> {
                if (metrics != null) {
                    metrics.append(m);
                }
                progress.update(m);
                summary.add(m);
                if (session != null && session.rank() == 0) {
                    session.reportStep(m, steps);
                }
            });
        }
        out.println(summary.describe((System.nanoTime() - startNs) / 1e9));
        if (session != null) {
            final TransportCounters c = session.communicator().counters();
            final long stepsRun = Math.max(1, trainer.completedSteps() - summary.firstStep);
            out.printf("transport: rank %d sent %,d bytes in %,d frames and received %,d bytes; %,d bytes sent per step%n",
                session.rank(), c.bytesSent(), c.framesSent(), c.bytesReceived(), c.bytesSent() / stepsRun);
        }
        final List<SaveResult> saved = trainer.savedCheckpoints();
        if (!saved.isEmpty()) {
            final SaveResult last = saved.get(saved.size() - 1);
            out.printf("checkpoint: %s (%d saved this run; %.1f MB written in %.2f s in the background)%n",
                last.directory(), saved.size(), last.bytes() / 1e6, last.totalNs() / 1e9);
        }
        if (!finished) {
            out.println("stopped at step " + trainer.completedSteps() + "; continue with: " + resumeCommand(runDir));
            return 130;
        }

        if (writesRunFiles()) {
            final List<Path> charts = RunCharts.render(metricsFile, runDir, trainer.model().config().vocabSize());
            charts.forEach(c -> out.println("chart: " + c));
        }

        if (evalSamples > 0) {
            final List<Evaluator.DomainResult> results = new Evaluator(trainer.model()).evaluate(heldOut, evalSamples);
            out.println();
            out.print(EvalReport.table(results));
            if (writesRunFiles()) {
                EvalReport.writeJson(results, runDir.resolve("eval.json"));
            }
        }
        if (samples > 0) {
            out.println();
            out.print(EvalReport.samples(trainer.model(), heldOut, samples, seed));
        }
        return 0;
    }

    private String resumeCommand(final Path runDir) {
        if (session != null && session.worldSize() > session.environment().localWorldSize()) {
            return "the job's launch command on every node, with the train option --resume auto (run " + runDir + ")";
        }
        final String command = session == null ? "./moeflow train"
            : "./moeflow launch --nproc-per-node " + session.environment().localWorldSize() + " train";
        return command + " --run-name " + runDir.getFileName()
            + (runsDir.equals(Path.of(TrainDefaults.RUNS_DIR)) ? "" : " --runs-dir " + runsDir) + " --resume auto";
    }

    /** A new run directory, or with --resume the existing one. */
    private Path runDirectory() {
        if (session != null) {
            return RunDirectory.createOrReuse(runsDir, runName); // the launcher created it (and checked the name)
        }
        if (resume == null) {
            return RunDirectory.create(runsDir, runName != null ? runName
                : RunDirectory.timestampedName("run-"));
        }
        if (!resume.equals(CheckpointStore.AUTO)) {
            return RunDirectory.ofCheckpoint(Path.of(resume));
        }
        if (runName == null) {
            throw new IllegalArgumentException("--resume auto needs --run-name: the run to continue");
        }
        return RunDirectory.createOrReuse(runsDir, runName);
    }

    /**
     * When resuming a run whose saved options predate --plan-steps: the length it was planned for is its saved
     * --steps. (Runs saved since then carry plan-steps, which the saved config.properties already supplied.)
     */
    private OptionalLong savedPlanSteps() {
        if (resume == null) {
            return OptionalLong.empty();
        }
        final Path saved = resume.equals(CheckpointStore.AUTO)
            ? (runName == null ? null : runsDir.resolve(runName).resolve("config.properties"))
            : RunDirectory.ofCheckpoint(Path.of(resume)).resolve("config.properties");
        if (saved == null || !Files.isRegularFile(saved)) {
            return OptionalLong.empty();
        }
        final Properties options = new Properties();
        try (Reader reader = Files.newBufferedReader(saved, StandardCharsets.UTF_8)) {
            options.load(reader);
        } catch (final IOException e) {
            throw new UncheckedIOException("cannot read " + saved + ": " + e.getMessage(), e);
        }
        final String value = options.getProperty("plan-steps", options.getProperty("steps"));
        try {
            return value == null ? OptionalLong.empty() : OptionalLong.of(Long.parseLong(value.strip()));
        } catch (final NumberFormatException e) {
            throw new IllegalArgumentException(saved + ": steps=" + value + " is not a number; fix or remove the line");
        }
    }

    private CheckpointWriter checkpointWriter(final Path runDir, final Trainer trainer, final String configText,
                                              final FaultInjector faults) {
        final RunMetadata metadata = new RunMetadata(configText, Main.projectVersion(), Main.gitCommit(),
            Runtime.version().toString(), session == null ? 1 : session.worldSize(),
            Map.of(ModelConfigCodec.ATTRIBUTE, ModelConfigCodec.encode(trainer.model().config())));
        final CheckpointConfig config = CheckpointConfig.defaults(runDir.resolve("checkpoints")).withKeepLast(keepLast)
            .withAsyncSave(asyncSave);
        return RankCheckpoints.writer(config, metadata, trainer, faults);
    }

    /** Restores the checkpoint --resume names; auto falls back past damaged ones (with a warning) or starts fresh. */
    private void resumeIfAsked(final Path runDir, final Trainer trainer, final PrintStream out) {
        if (resume == null) {
            return;
        }
        final CheckpointStore store = new CheckpointStore(runDir.resolve("checkpoints"));
        // One read of every tensor, checksums checked as it goes; auto falls back past a damaged checkpoint.
        // In a job rank 0 chooses the step and every rank loads it (whatever job shape wrote it).
        final Optional<Resolution> found = resume.equals(CheckpointStore.AUTO) ? RankCheckpoints.resumeAuto(store, trainer)
            : Optional.of(store.load(Path.of(resume), trainer::restore));
        if (found.isEmpty()) {
            out.println("resume: no checkpoint in " + store.directory() + " yet, starting from step 0");
            return;
        }
        found.get().warnings().forEach(w -> out.println("warning: " + w));
        if (steps > planSteps) {
            out.println("resume: extending the run to " + steps + " steps; it was planned for " + planSteps
                + ", so its stages keep their absolute steps and the last one continues past step " + planSteps);
        }
        out.println("resume: continuing from " + found.get().directory() + " (step " + trainer.completedSteps() + ")");
    }

    private static String describe(final ModelConfig m, final TrainerConfig t, final CurriculumConfig c,
                                   final Dataset all, final int skipped, final Dataset training, final Dataset heldOut) {
        final StringBuilder s = new StringBuilder();
        s.append(String.format("model: %,d parameters, %,d active per token (%.1f%% of expert parameters), "
                + "%.2f MFLOP per token (forward + backward)%n", m.parameterCount(), m.activeParametersPerToken(),
            100.0 * (m.topK() + m.sharedExperts()) / (m.experts() + m.sharedExperts()), m.flopsPerToken() / 1e6));
        s.append(String.format("data: %s, %,d samples (%,d training, %,d held out), domains %s%s%n",
            all.source().startsWith("BuiltinConfig") ? "built-in generator" : all.source(), all.size(), training.size(),
            heldOut.size(), String.join(", ", all.domains()),
            skipped == 0 ? "" : String.format("; %,d malformed samples skipped (--skip-bad-samples)", skipped)));
        s.append(String.format("curriculum: %s", c.kind().name().toLowerCase()));
        final boolean stageRates = t.lrSchedule() == TrainerConfig.LrScheduleKind.CURRICULUM;
        if (c.kind() == CurriculumConfig.Kind.STAGED) {
            for (final Stage st : c.stages()) {
                // a stage's rate is shown only when it is used: other schedules ignore it
                s.append(String.format("%n  stage %-13s difficulty [%.2f, %.2f)  %s%s", st.name(), st.minDifficulty(),
                    st.maxDifficulty(), st.lengthSteps() > 0 ? st.lengthSteps() + " steps" : st.lengthTokens() + " tokens",
                    stageRates && !Double.isNaN(st.lr()) ? "  lr " + st.lr() : ""));
            }
        }
        s.append(String.format("%nlearning rate: %s%s", switch (t.lrSchedule()) {
            case CURRICULUM -> "each stage's own rate";
            case CONSTANT -> "constant " + t.lr();
            case COSINE -> "cosine from " + t.lr() + " to " + t.minLr();
        }, t.warmupSteps() > 0 ? ", linear warmup over the first " + t.warmupSteps() + " steps" : ""));
        s.append(String.format("%ntraining: %,d steps of %d x %d tokens on %d threads", t.steps(), t.batchSize(),
            m.seqLen(), t.threads()));
        return s.toString();
    }

    /** Running totals for the end-of-run summary. */
    static final class RunSummary {
        private final long firstStep;
        private final long steps;
        private final double[] recentLoss;
        private int recent;
        private double tokensPerSecondSum;
        private long counted;
        private double firstLoss = Double.NaN;

        RunSummary(final long firstStep, final long steps) {
            this.firstStep = firstStep;
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
            return String.format("done: steps %d to %d in %.1f s, %.0f tokens/s on average; cross-entropy %.3f at the "
                    + "start, %.3f over the last %d steps (uniform guess: ln 256 = %.3f)", firstStep + 1, firstStep + counted, seconds,
                counted == 0 ? 0 : tokensPerSecondSum / counted, firstLoss, sum / Math.max(1, n), n, Math.log(256));
        }
    }
}
