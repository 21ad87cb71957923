package io.moeflow.launcher;

import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;

import io.moeflow.curriculum.CurriculumConfig;
import io.moeflow.curriculum.Dataset;
import io.moeflow.launcher.report.StudyChart;
import io.moeflow.optimizer.AdamWConfig;
import io.moeflow.trainer.Evaluator;
import io.moeflow.trainer.Trainer;
import io.moeflow.trainer.TrainerConfig;
import io.moeflow.trainer.kernels.Kernels;
import io.moeflow.trainer.model.ModelConfig;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * {@code moeflow study curriculum}: what the curriculum buys. The same model, token budget and learning-rate curve
 * under five data schedules (the staged curriculum, DeepSpeed's fixed_linear and fixed_root pacing, uniform sampling
 * and a true epoch shuffle), several seeds each; reports steps and tokens to a target held-out loss, the final
 * held-out loss and per-domain exact match, each as mean and spread over the seeds, and draws the held-out loss
 * curves in one chart.
 */
@Command(name = "curriculum", mixinStandardHelpOptions = true, sortOptions = false, usageHelpAutoWidth = true,
    description = {"Compare the staged curriculum, DeepSpeed pacing (fixed_linear, fixed_root) and the shuffled "
        + "baselines (uniform sampling, epoch shuffle) on the same model, token budget and learning-rate curve, "
        + "over several seeds.",
        "Writes <out>/study.txt (the table) and <out>/curriculum-study.png (held-out loss per schedule)."})
public final class StudyCurriculumCommand implements Callable<Integer> {
    /** The schedules compared, in print order. */
    static final List<CurriculumConfig.Kind> SCHEDULES = List.of(CurriculumConfig.Kind.STAGED,
        CurriculumConfig.Kind.FIXED_LINEAR, CurriculumConfig.Kind.FIXED_ROOT, CurriculumConfig.Kind.NONE,
        CurriculumConfig.Kind.SHUFFLE);
    /** Steps per run at --scale 1: 15 runs take a few minutes on two cores. */
    static final long BASE_STEPS = 800;

    @Option(names = "--scale", paramLabel = "F", defaultValue = "1",
        description = "Multiplies the steps (and so the tokens) of every run: " + BASE_STEPS + " x F. Default: "
            + "${DEFAULT-VALUE}")
    double scale;

    @Option(names = "--seeds", paramLabel = "N", defaultValue = "3",
        description = "Seeds per schedule (model initialisation and sampling). Default: ${DEFAULT-VALUE}")
    int seeds;

    @Option(names = "--lr", paramLabel = "LR", defaultValue = "" + CurriculumConfig.DEFAULT_BASE_LR,
        description = "Peak learning rate, the same cosine curve (to LR/10, linear warmup over 5%% of the steps) for "
            + "every schedule. Default: ${DEFAULT-VALUE}")
    double lr;

    @Option(names = "--target-loss", paramLabel = "L",
        description = "Held-out loss whose first crossing is reported. Default: the worst schedule's mean final "
            + "held-out loss, which every schedule reaches on average")
    Double targetLoss;

    @Option(names = "--eval-samples", paramLabel = "N", defaultValue = "50",
        description = "Held-out samples per domain for the final exact match. Default: ${DEFAULT-VALUE}")
    int evalSamples;

    @Option(names = "--batch-size", paramLabel = "B", defaultValue = "" + TrainDefaults.BATCH_SIZE,
        description = "Sequences per step. Default: ${DEFAULT-VALUE}")
    int batchSize;

    @Option(names = "--threads", paramLabel = "N", description = "Worker threads. Default: the number of cores")
    Integer threads;

    @Option(names = "--out", paramLabel = "DIR",
        description = "Where study.txt and the chart go. Default: runs/study-curriculum-<date>-<time>")
    Path out;

    @Mixin
    ModelOptions model;

    @Mixin
    DataOptions data;

    /** One run's results. */
    record RunResult(List<double[]> evalCurve, double finalLoss, Map<String, Double> accuracy) {
    }

    @Override
    public Integer call() {
        if (!(scale > 0) || seeds < 1 || evalSamples < 1) {
            throw new IllegalArgumentException("--scale=" + scale + " must be > 0, --seeds=" + seeds + " and "
                + "--eval-samples=" + evalSamples + " >= 1");
        }
        final long steps = Math.max(20, Math.round(BASE_STEPS * scale));
        final long evalEvery = Math.max(1, steps / 20);
        final long warmup = Math.max(1, steps / 20);
        final ModelConfig modelConfig = model.toConfig();
        final Dataset all = data.load();
        final Dataset training = all.training();
        final Dataset heldOut = all.heldOut();
        final Path dir = out != null ? out : Path.of(TrainDefaults.RUNS_DIR,
            RunDirectory.timestampedName("study-curriculum-"));
        final PrintStream o = System.out;
        final long tokensPerStep = (long) batchSize * modelConfig.seqLen();
        o.printf("study curriculum: %d schedules x %d seeds, %,d steps each (%,d tokens), lr %s cosine to %s with "
                + "%d warmup steps, held-out loss every %d steps%n", SCHEDULES.size(), seeds, steps,
            steps * tokensPerStep, lr, lr / 10, warmup, evalEvery);

        final Map<CurriculumConfig.Kind, List<RunResult>> results = new LinkedHashMap<>();
        for (final CurriculumConfig.Kind kind : SCHEDULES) {
            final List<RunResult> runs = new ArrayList<>();
            for (int s = 0; s < seeds; s++) {
                final long t0 = System.nanoTime();
                final RunResult r = run(kind, s, steps, evalEvery, warmup, modelConfig, training, heldOut);
                runs.add(r);
                o.printf("  %-13s seed %d: final held-out loss %.4f (%.0f s)%n", name(kind), s, r.finalLoss(),
                    (System.nanoTime() - t0) / 1e9);
            }
            results.put(kind, runs);
        }
        double target = Double.NEGATIVE_INFINITY;
        if (targetLoss != null) {
            target = targetLoss;
        } else {
            for (final List<RunResult> runs : results.values()) {
                target = Math.max(target, mean(runs.stream().mapToDouble(RunResult::finalLoss).toArray()));
            }
        }
        final String table = table(results, target, tokensPerStep, heldOut.domains());
        o.println();
        o.print(table);
        try {
            Files.createDirectories(dir);
            Files.writeString(dir.resolve("study.txt"), table);
        } catch (final IOException e) {
            throw new UncheckedIOException("cannot write " + dir.resolve("study.txt"), e);
        }
        final Map<String, List<List<double[]>>> curves = new LinkedHashMap<>();
        results.forEach((k, runs) -> curves.put(name(k), runs.stream().map(RunResult::evalCurve).toList()));
        final Path chart = StudyChart.render(curves, target, dir.resolve("curriculum-study.png"),
            String.format("Held-out loss, mean of %d seeds (%,d steps of %,d tokens)", seeds, steps, tokensPerStep));
        o.println("chart: " + chart);
        o.println("table: " + dir.resolve("study.txt"));
        return 0;
    }

    private RunResult run(final CurriculumConfig.Kind kind, final int seedIndex, final long steps, final long evalEvery,
                          final long warmup, final ModelConfig modelConfig, final Dataset training,
                          final Dataset heldOut) {
        final TrainerConfig trainerConfig = new TrainerConfig(steps, batchSize, TrainDefaults.threads(threads),
            TrainDefaults.SEED + seedIndex, TrainerConfig.LrScheduleKind.COSINE, lr, lr / 10, warmup, Kernels.FAST);
        final CurriculumConfig curriculum = CurriculumConfig.defaults(kind, steps)
            .withSeed(CurriculumConfig.DEFAULT_SEED + seedIndex);
        final List<double[]> curve = new ArrayList<>();
        try (Trainer trainer = new Trainer(trainerConfig, modelConfig, AdamWConfig.defaults(), curriculum, training)) {
            trainer.evaluateEvery(heldOut, evalEvery, TrainDefaults.EVAL_LOSS_SAMPLES);
            trainer.train(m -> {
                if (Double.isFinite(m.evalLoss)) {
                    curve.add(new double[] {m.step, m.evalLoss});
                }
            });
            final Evaluator evaluator = new Evaluator(trainer.model());
            final double finalLoss = evaluator.loss(heldOut, TrainDefaults.EVAL_LOSS_SAMPLES);
            if (curve.isEmpty() || curve.get(curve.size() - 1)[0] != steps) {
                curve.add(new double[] {steps, finalLoss});
            }
            final Map<String, Double> accuracy = new LinkedHashMap<>();
            for (final Evaluator.DomainResult d : evaluator.evaluate(heldOut, evalSamples)) {
                if (d.answeredTotal() > 0) {
                    accuracy.put(d.domain(), d.accuracy());
                }
            }
            return new RunResult(curve, finalLoss, accuracy);
        }
    }

    static String name(final CurriculumConfig.Kind kind) {
        return switch (kind) {
            case NONE -> "uniform";
            case SHUFFLE -> "epoch-shuffle";
            default -> kind.name().toLowerCase(Locale.ROOT);
        };
    }

    /** The study's table: one row per schedule, means and sample standard deviations over the seeds. */
    static String table(final Map<CurriculumConfig.Kind, List<RunResult>> results, final double target,
                        final long tokensPerStep, final List<String> domains) {
        final List<String> answered = new ArrayList<>();
        for (final String d : domains) {
            if (results.values().stream().flatMap(List::stream).anyMatch(r -> r.accuracy().containsKey(d))) {
                answered.add(d);
            }
        }
        final StringBuilder s = new StringBuilder();
        s.append(String.format("target held-out loss %.4f; mean +- standard deviation over seeds%n", target));
        s.append(String.format("%-14s %-22s %-14s %-17s", "schedule", "steps to target", "tokens (M)",
            "final held-out"));
        for (final String d : answered) {
            s.append(String.format(" %-13s", d));
        }
        s.append('\n');
        for (final Map.Entry<CurriculumConfig.Kind, List<RunResult>> e : results.entrySet()) {
            final List<RunResult> runs = e.getValue();
            final List<Double> reached = new ArrayList<>();
            for (final RunResult r : runs) {
                final double step = stepsToTarget(r.evalCurve(), target);
                if (!Double.isNaN(step)) {
                    reached.add(step);
                }
            }
            final double[] st = reached.stream().mapToDouble(Double::doubleValue).toArray();
            final String steps = st.length == 0 ? "not reached"
                : String.format("%.0f +- %.0f (%d/%d)", mean(st), sd(st), st.length, runs.size());
            final String tokens = st.length == 0 ? "-" : String.format("%.2f", mean(st) * tokensPerStep / 1e6);
            final double[] fl = runs.stream().mapToDouble(RunResult::finalLoss).toArray();
            s.append(String.format("%-14s %-22s %-14s %-17s", name(e.getKey()), steps, tokens,
                String.format("%.4f +- %.4f", mean(fl), sd(fl))));
            for (final String d : answered) {
                final double[] acc = runs.stream().mapToDouble(r -> r.accuracy().getOrDefault(d, Double.NaN)).toArray();
                s.append(String.format(" %-13s", String.format("%.1f +- %.1f", 100 * mean(acc), 100 * sd(acc))));
            }
            s.append('\n');
        }
        s.append("steps to target: first held-out evaluation at or below the target (seeds that reached it / all); "
            + "domain columns: exact match in %\n");
        return s.toString();
    }

    /** The first evaluated step whose held-out loss is at or below {@code target}, NaN if none. */
    static double stepsToTarget(final List<double[]> curve, final double target) {
        for (final double[] p : curve) {
            if (p[1] <= target) {
                return p[0];
            }
        }
        return Double.NaN;
    }

    static double mean(final double[] v) {
        double sum = 0;
        for (final double x : v) {
            sum += x;
        }
        return v.length == 0 ? Double.NaN : sum / v.length;
    }

    /** Sample standard deviation (n - 1), 0 for a single value. */
    static double sd(final double[] v) {
        if (v.length < 2) {
            return 0;
        }
        final double m = mean(v);
        double sum = 0;
        for (final double x : v) {
            sum += (x - m) * (x - m);
        }
        return Math.sqrt(sum / (v.length - 1));
    }
}
