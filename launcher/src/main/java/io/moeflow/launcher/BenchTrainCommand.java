package io.moeflow.launcher;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import io.moeflow.trainer.bench.TrainBenchmark;
import io.moeflow.trainer.model.ModelConfig;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code moeflow bench train}: training speed of the bench model, next to the same model in
 * PyTorch ({@code bench/torch_moe_reference.py}) measured in the same command on the same machine.
 */
@Command(name = "train", mixinStandardHelpOptions = true, sortOptions = false,
    description = {"Train the bench model (V=256, T=128, C=128, L=2, H=4, E=16 top-2, F=256, B=16, AdamW) and print "
        + "tokens/s and the share of the machine's peak (a large GEMM of ours, measured in the same run).",
        "If /usr/bin/python3 has torch (apt-get install python3-torch), the same model in PyTorch runs in the same "
            + "command, alternating with ours, and the ratio is printed, unless PyTorch ran on OpenBLAS's generic "
            + "kernels or the reference BLAS (then it says so instead)."})
public final class BenchTrainCommand implements Callable<Integer> {
    private static final Pattern TORCH_LINE = Pattern.compile("tokens/s=(\\d+)");

    @Option(names = "--threads", paramLabel = "N", description = "Our worker threads. Default: the number of cores")
    Integer threads;

    @Option(names = "--steps", paramLabel = "N", defaultValue = "50",
        description = "Timed steps per round. Default: ${DEFAULT-VALUE}")
    int steps;

    @Option(names = "--warmup", paramLabel = "N", defaultValue = "30",
        description = "Untimed steps first (JIT compilation). Default: ${DEFAULT-VALUE}")
    int warmup;

    @Option(names = "--rounds", paramLabel = "N", defaultValue = "3",
        description = "Rounds, alternating PyTorch and MoEFlow; medians are reported. Default: ${DEFAULT-VALUE}")
    int rounds;

    @Option(names = "--python", paramLabel = "EXE", defaultValue = "/usr/bin/python3",
        description = "Python with torch for the baseline. Default: ${DEFAULT-VALUE}")
    Path python;

    @Option(names = "--torch-threads", paramLabel = "N", defaultValue = "1",
        description = "PyTorch threads (1 is its best on 2 cores). Default: ${DEFAULT-VALUE}")
    int torchThreads;

    @Option(names = "--no-torch", defaultValue = "false", description = "Skip the PyTorch baseline.")
    boolean noTorch;

    @Override
    public Integer call() throws Exception {
        if (rounds < 1 || steps < 1 || warmup < 0) {
            throw new IllegalArgumentException("--rounds=" + rounds + " and --steps=" + steps + " must be >= 1, --warmup="
                + warmup + " >= 0");
        }
        final int ourThreads = TrainDefaults.threads(threads);
        final Path script = Path.of(System.getProperty("moeflow.home", "."), "bench", "torch_moe_reference.py");
        final boolean torch = !noTorch && hasTorch(script);
        final ModelConfig model = ModelConfig.benchModel();
        System.out.printf("bench model: %,d parameters, %,d active per token, %.2f GFLOP per step of %d tokens%n",
            model.parameterCount(), model.activeParametersPerToken(),
            model.flopsPerToken() * TrainBenchmark.BATCH * model.seqLen() / 1e9, TrainBenchmark.BATCH * model.seqLen());
        if (!noTorch && !torch) {
            System.out.println("PyTorch baseline: not available (" + python + " cannot import torch; apt-get install "
                + "python3-torch), running MoEFlow only");
        }

        final double[] ours = new double[rounds];
        final double[] theirs = new double[rounds];
        BaselineBlas blas = null;
        double peak = 0;
        for (int r = 0; r < rounds; r++) {
            if (torch) {
                final List<String> output = runTorch(script);
                theirs[r] = tokensPerSecond(output);
                blas = BaselineBlas.parse(output);
                System.out.printf("round %d: PyTorch %s threads=%d  %,.0f tokens/s  BLAS: %s%n", r + 1, "cpu",
                    torchThreads, theirs[r], blas.describe());
            }
            final TrainBenchmark.Result result = TrainBenchmark.run(new TrainBenchmark.Config(ourThreads, warmup, steps, 0));
            ours[r] = result.tokensPerSecond();
            peak = Math.max(peak, result.peakGflops()); // the machine's peak: the best large GEMM seen in this command
            System.out.printf("round %d: %s%n", r + 1, result.summary());
        }
        final double oursMedian = median(ours);
        System.out.println();
        System.out.printf("MoEFlow  %,10.0f tokens/s (median of %d rounds, %d threads), %.1f GFLOP/s = %.0f%% of the "
                + "machine's peak %.1f GFLOP/s (our best large GEMM in this command)%n", oursMedian, rounds, ourThreads,
            model.flopsPerToken() * oursMedian / 1e9, 100 * model.flopsPerToken() * oursMedian / 1e9 / peak, peak);
        if (torch) {
            final double theirsMedian = median(theirs);
            System.out.printf("PyTorch  %,10.0f tokens/s (median of %d rounds, %d thread%s, %s)%n", theirsMedian, rounds,
                torchThreads, torchThreads == 1 ? "" : "s", blas.describe());
            final java.util.Optional<String> refusal = blas.refusal();
            if (refusal.isPresent()) {
                System.out.println("ratio    " + refusal.get());
            } else {
                System.out.printf("ratio    %.2fx PyTorch%n", oursMedian / theirsMedian);
            }
        }
        return 0;
    }

    private boolean hasTorch(final Path script) {
        if (!Files.isExecutable(python) || !Files.exists(script)) {
            return false;
        }
        try {
            final Process p = new ProcessBuilder(python.toString(), "-c", "import torch").redirectErrorStream(true).start();
            p.getInputStream().readAllBytes();
            return p.waitFor(60, TimeUnit.SECONDS) && p.exitValue() == 0;
        } catch (final IOException e) {
            return false;
        } catch (final InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
    }

    /** Runs the PyTorch reference for the same number of timed steps and returns what it printed. */
    private List<String> runTorch(final Path script) throws IOException, InterruptedException {
        final ProcessBuilder pb = new ProcessBuilder(python.toString(), script.toString(), String.valueOf(steps),
            String.valueOf(torchThreads)).redirectErrorStream(true);
        // PyTorch at its best: no OpenMP spinning threads beyond the ones asked for.
        final Map<String, String> env = pb.environment();
        env.put("OMP_NUM_THREADS", String.valueOf(torchThreads));
        final Process p = pb.start();
        final List<String> lines = new ArrayList<>();
        try (BufferedReader r = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
            for (String line = r.readLine(); line != null; line = r.readLine()) {
                lines.add(line);
            }
        }
        if (!p.waitFor(600, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new IllegalStateException("the PyTorch baseline did not finish within 600 s");
        }
        return lines;
    }

    /** The baseline's tokens/s from its output. */
    static double tokensPerSecond(final List<String> lines) {
        for (final String line : lines) {
            final Matcher m = TORCH_LINE.matcher(line);
            if (m.find()) {
                return Double.parseDouble(m.group(1));
            }
        }
        throw new IllegalStateException("the PyTorch baseline printed no tokens/s: " + lines);
    }

    private static double median(final double[] values) {
        final double[] v = values.clone();
        Arrays.sort(v);
        return v.length % 2 == 1 ? v[v.length / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
    }
}
