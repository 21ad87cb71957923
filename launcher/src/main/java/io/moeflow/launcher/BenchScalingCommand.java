package io.moeflow.launcher;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import io.moeflow.launcher.report.ScalingChart;
import io.moeflow.trainer.bench.TrainBenchmark;
import io.moeflow.trainer.model.ModelConfig;
import io.moeflow.transport.bench.WorkerProcesses;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code moeflow bench scaling}: the bench model trained by the real {@code moeflow train} and
 * {@code moeflow launch} paths, in five configurations measured one after the other in one command:
 * one process with one thread, one process with every core, two ranks data parallel and two ranks
 * expert parallel (one thread each), and two independent one-thread processes at the same time,
 * which is this machine's own ceiling for two ranks. Figures come from each run's metrics.jsonl
 * (after the warm-up steps) and rank 0's transport counters.
 */
@Command(name = "scaling", mixinStandardHelpOptions = true, sortOptions = false, usageHelpAutoWidth = true,
    description = {"Scaling of the bench model over ranks: 1 process x 1 thread, 1 process x all cores, 2 ranks data parallel, "
        + "2 ranks expert parallel (1 thread each), and two independent 1-thread processes at once (the machine's ceiling for "
        + "2 ranks). Prints tokens/s, the share of step time spent waiting for gradients (communication not hidden), bytes "
        + "sent per step, and scaling efficiency; draws a PNG."})
public final class BenchScalingCommand implements Callable<Integer> {
    private static final Pattern BYTES_PER_STEP = Pattern.compile("transport: rank 0 .*; ([\\d,]+) bytes sent per step");
    private static final Pattern NUMBER = Pattern.compile("\"%s\":([-0-9.eE]+)");

    @Option(names = "--steps", paramLabel = "N", defaultValue = "60",
        description = "Timed steps per configuration. Default: ${DEFAULT-VALUE}")
    int steps;

    @Option(names = "--warmup", paramLabel = "N", defaultValue = "30",
        description = "Untimed steps first (JIT compilation). Default: ${DEFAULT-VALUE}")
    int warmup;

    @Option(names = "--dir", paramLabel = "DIR",
        description = "Where the runs and logs go. Default: runs/bench/scaling-<date>-<time>")
    Path dir;

    @Option(names = "--chart", paramLabel = "FILE", description = "The PNG. Default: <dir>/scaling.png")
    Path chart;

    @Option(names = "--timeout", paramLabel = "SECONDS", defaultValue = "900",
        description = "Longest time one configuration may take before it is killed. Default: ${DEFAULT-VALUE}")
    long timeoutSeconds;

    /** One measured configuration; tokens/s is NaN when it failed. */
    record Row(String label, int ranks, int threadsPerRank, double tokensPerSecond, double stepMs, double exposedShare,
               long bytesPerStep, String note) {
    }

    @Override
    public Integer call() throws IOException, InterruptedException {
        if (steps < 1 || warmup < 1) {
            throw new IllegalArgumentException("--steps " + steps + " --warmup " + warmup + ": both must be >= 1");
        }
        final Path root = dir != null ? dir : Path.of(TrainDefaults.RUNS_DIR, "bench",
            RunDirectory.timestampedName("scaling-"));
        Files.createDirectories(root);
        final int cores = Runtime.getRuntime().availableProcessors();
        final ModelConfig model = ModelConfig.benchModel();
        System.out.printf("bench scaling: the bench model (%,d parameters; B=%d x T=%d = %,d tokens per step), %d warm-up + %d "
                + "timed steps per configuration, %d cores, runs in %s%n", model.parameterCount(), TrainBenchmark.BATCH,
            model.seqLen(), TrainBenchmark.BATCH * model.seqLen(), warmup, steps, cores, root);

        final List<Row> rows = new ArrayList<>();
        rows.add(single(root, "1 process x 1 thread", "single-1t", 1));
        rows.add(single(root, "1 process x " + cores + " threads", "single-" + cores + "t", cores));
        rows.add(launched(root, "2 ranks data parallel", "dp-2", 1));
        rows.add(launched(root, "2 ranks expert parallel", "ep-2", 2));
        rows.add(pair(root));

        final Row one = rows.get(0);
        final Row ceiling = rows.get(4);
        System.out.println();
        System.out.printf("%-34s %6s %10s %9s %9s %12s %10s %10s%n", "configuration", "ranks", "tokens/s", "step ms", "exposed",
            "bytes/step", "vs 1x1", "vs ceiling");
        for (final Row r : rows) {
            if (Double.isNaN(r.tokensPerSecond())) {
                System.out.printf("%-34s %6d %10s   %s%n", r.label(), r.ranks(), "-", r.note());
                continue;
            }
            System.out.printf(Locale.ROOT, "%-34s %6d %,10.0f %9.1f %9s %,12d %9.2fx %9.0f%%%n", r.label(), r.ranks(), r.tokensPerSecond(),
                r.stepMs(), Double.isNaN(r.exposedShare()) ? "-" : String.format(Locale.ROOT, "%.1f%%", 100 * r.exposedShare()),
                r.bytesPerStep(), r.tokensPerSecond() / one.tokensPerSecond(), 100 * r.tokensPerSecond() / ceiling.tokensPerSecond());
        }
        System.out.println("exposed: share of step time rank 0 waited on communication: for the job's gradients after backward "
            + "(the all-reduce not hidden behind backward) and, in the MoE layers, for the routing counts, the token all-to-alls "
            + "and the expert gradient sums (moe_wait_ms).");
        System.out.println("vs 1x1: tokens/s over one process with one thread; vs ceiling: over two independent one-thread processes"
            + " run at the same time (what two ranks could reach on this machine without any communication).");
        for (final Row r : rows.subList(2, 4)) {
            if (!Double.isNaN(r.tokensPerSecond())) {
                System.out.printf(Locale.ROOT, "%s: scaling efficiency %.0f%% of 2 x one thread, %.0f%% of the ceiling%n", r.label(),
                    100 * r.tokensPerSecond() / (2 * one.tokensPerSecond()), 100 * r.tokensPerSecond() / ceiling.tokensPerSecond());
            }
        }
        final Path png = chart != null ? chart : root.resolve("scaling.png");
        ScalingChart.write("moeflow bench scaling: bench model, " + cores + " cores",
            rows.stream().map(r -> new ScalingChart.Bar(r.label().replace(" independent processes", " processes"), r.tokensPerSecond()))
                .toList(), png);
        System.out.println("chart: " + png);
        return rows.stream().anyMatch(r -> Double.isNaN(r.tokensPerSecond()) && r.ranks() != 2) ? 1 : 0;
    }

    /** The train options of the bench model, constant learning rate, no evaluation. */
    private List<String> trainArgs(final Path root, final String name, final int threads) {
        return new ArrayList<>(List.of("train", "--run-name", name, "--runs-dir", root.toString(), "--steps",
            Integer.toString(warmup + steps), "--threads", Integer.toString(threads),
            "--vocab-size", "256", "--seq-len", "128", "--channels", "128", "--layers", "2", "--heads", "4", "--experts", "16",
            "--top-k", "2", "--expert-hidden", "256", "--batch-size", Integer.toString(TrainBenchmark.BATCH),
            "--curriculum", "none", "--lr-schedule", "constant", "--lr", "3e-4", "--eval-every", "0", "--eval-samples", "0",
            "--samples", "0", "--save-every", "0", "--samples-per-domain", "1000"));
    }

    private Row single(final Path root, final String label, final String name, final int threads) throws IOException, InterruptedException {
        System.out.println("running: " + label);
        final Process p = start(trainArgs(root, name, threads), root.resolve(name + ".log"));
        if (!finished(p)) {
            return failed(label, 1, threads, "did not finish within --timeout; see " + root.resolve(name + ".log"));
        }
        return measured(label, 1, threads, root.resolve(name), null);
    }

    private Row pair(final Path root) throws IOException, InterruptedException {
        final String label = "2 independent processes x 1 thread";
        System.out.println("running: " + label + " (at the same time)");
        final Process a = start(trainArgs(root, "pair-a", 1), root.resolve("pair-a.log"));
        final Process b = start(trainArgs(root, "pair-b", 1), root.resolve("pair-b.log"));
        if (!finished(a) || !finished(b)) {
            a.destroyForcibly();
            b.destroyForcibly();
            return failed(label, 2, 1, "did not finish within --timeout");
        }
        final Row ra = measured(label, 1, 1, root.resolve("pair-a"), null);
        final Row rb = measured(label, 1, 1, root.resolve("pair-b"), null);
        System.out.printf(Locale.ROOT, "  %,.0f + %,.0f tokens/s%n", ra.tokensPerSecond(), rb.tokensPerSecond());
        return new Row(label, 2, 1, ra.tokensPerSecond() + rb.tokensPerSecond(), Math.max(ra.stepMs(), rb.stepMs()), Double.NaN, 0,
            "");
    }

    private Row launched(final Path root, final String label, final String name, final int expertParallel)
        throws IOException, InterruptedException {
        System.out.println("running: " + label);
        final List<String> args = new ArrayList<>(List.of("launch", "--nproc-per-node", "2", "--echo", "none"));
        args.addAll(trainArgs(root, name, 1));
        args.addAll(List.of("--expert-parallel", Integer.toString(expertParallel)));
        final Path log = root.resolve(name + ".log");
        final Process p = start(args, log);
        if (!finished(p) || p.exitValue() != 0) {
            return failed(label, 2, 1, "failed (exit " + (p.isAlive() ? "timeout" : p.exitValue()) + "): "
                + lastLine(log) + " (see " + log + ")");
        }
        final Matcher m = BYTES_PER_STEP.matcher(Files.readString(root.resolve(name).resolve("rank-0.log"), StandardCharsets.UTF_8));
        return measured(label, 2, 1, root.resolve(name), m.find() ? Long.parseLong(m.group(1).replace(",", "")) : -1L);
    }

    private Process start(final List<String> args, final Path log) throws IOException {
        final List<String> command = WorkerProcesses.javaCommand(WorkerProcesses.inheritedJvmFlags(), Main.class.getName(), args);
        return new ProcessBuilder(command).redirectErrorStream(true).redirectOutput(log.toFile()).start();
    }

    private boolean finished(final Process p) throws InterruptedException {
        if (p.waitFor(timeoutSeconds, TimeUnit.SECONDS)) {
            return true;
        }
        p.descendants().forEach(ProcessHandle::destroyForcibly);
        p.destroyForcibly();
        return false;
    }

    /** Tokens/s, step time and exposed share over the timed steps of a run's metrics.jsonl. */
    Row measured(final String label, final int ranks, final int threads, final Path run, final Long bytesPerStep) {
        final List<String> lines;
        try {
            lines = Files.readAllLines(run.resolve("metrics.jsonl"), StandardCharsets.UTF_8);
        } catch (final IOException e) {
            return failed(label, ranks, threads, "no metrics: " + e.getMessage());
        }
        if (lines.size() < warmup + steps) {
            return failed(label, ranks, threads, "only " + lines.size() + " steps in " + run.resolve("metrics.jsonl"));
        }
        double stepMs = 0;
        double waitMs = 0;
        final List<String> timed = lines.subList(warmup, warmup + steps);
        for (final String line : timed) {
            stepMs += number(line, "step_ms");
            waitMs += number(line, "grad_wait_ms") + (line.contains("\"moe_wait_ms\"") ? number(line, "moe_wait_ms") : 0);
        }
        final double tokens = number(timed.get(timed.size() - 1), "tokens") - number(lines.get(warmup - 1), "tokens");
        return new Row(label, ranks, threads, tokens / (stepMs / 1e3), stepMs / steps, ranks > 1 ? waitMs / stepMs : Double.NaN,
            bytesPerStep == null ? 0 : bytesPerStep, "");
    }

    private static double number(final String line, final String field) {
        final Matcher m = Pattern.compile(String.format(NUMBER.pattern(), field)).matcher(line);
        if (!m.find()) {
            throw new IllegalStateException("metrics line without " + field + ": " + line);
        }
        return Double.parseDouble(m.group(1));
    }

    private static Row failed(final String label, final int ranks, final int threads, final String why) {
        System.out.println("  " + label + ": " + why);
        return new Row(label, ranks, threads, Double.NaN, Double.NaN, Double.NaN, 0, why);
    }

    private static String lastLine(final Path log) {
        try {
            final List<String> lines = Files.readAllLines(log, StandardCharsets.UTF_8);
            return lines.isEmpty() ? "(no output)" : lines.get(lines.size() - 1);
        } catch (final IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
