package io.moeflow.trainer.bench;

import io.moeflow.optimizer.AdamW;
import io.moeflow.optimizer.AdamWConfig;
import io.moeflow.trainer.kernels.Kernels;
import io.moeflow.trainer.model.ModelConfig;
import io.moeflow.trainer.model.MoeModel;
import io.moeflow.trainer.model.Parallel;
import java.util.SplittableRandom;

/**
 * The training benchmark of issue 2: the bench model ({@link ModelConfig#benchModel()}, B=16 sequences of 128 bytes)
 * trained on one fixed random batch with AdamW, like {@code torch_moe_reference.py} (lr 3e-4, weight decay 0.1,
 * PyTorch's default betas 0.9/0.999, eps 1e-8, no clipping). Times {@code steps} full steps (forward, backward, AdamW
 * over the whole slab, split over the model's workers) after {@code warmupSteps}, and measures {@link PeakFlops} on
 * the same pool right after. No {@code main}: the CLI calls {@link #run(Config)}.
 */
public final class TrainBenchmark {
    /** Batch size of the bench model, as in the PyTorch reference. */
    public static final int BATCH = 16;

    /**
     * @param threads     worker threads (2 on a 2-core machine)
     * @param warmupSteps untimed steps first: the JIT compiles the kernels during the first few dozen
     * @param steps       timed steps
     * @param seed        init and data seed
     */
    public record Config(int threads, int warmupSteps, int steps, long seed) {
        /** Validates the fields. */
        public Config {
            if (threads < 1 || warmupSteps < 0 || steps < 1) {
                throw new IllegalArgumentException("threads=" + threads + " must be >= 1, warmupSteps=" +
                    warmupSteps + " >= 0, steps=" + steps + " >= 1");
            }
        }

        /**
         * @return 2 threads, 30 warm-up steps (C2 has compiled the kernels by then), 50 timed steps, seed 0
         */
        public static Config defaults() {
            return new Config(2, 30, 50, 0);
        }
    }

    /**
     * @param threads          worker threads used
     * @param steps            timed steps
     * @param msPerStep        mean wall time of one step (forward + backward + AdamW)
     * @param msForward        mean forward time
     * @param msBackward       mean backward time
     * @param msOptimizer      mean AdamW time
     * @param tokensPerSecond  B * T / step time
     * @param gflopsPerSecond  model FLOPs per step ({@link ModelConfig#flopsPerToken()} * B * T) / step time
     * @param peakGflops       {@link PeakFlops} on the same pool
     * @param firstLoss        loss of the first step
     * @param lastLoss         loss of the last step (falls: the batch is being memorised)
     */
    public record Result(int threads, int steps, double msPerStep, double msForward, double msBackward,
        double msOptimizer, double tokensPerSecond, double gflopsPerSecond, double peakGflops, double firstLoss,
        double lastLoss) {
        /**
         * @return achieved GFLOP/s as a share of the measured peak, in [0, 1]
         */
        public double shareOfPeak() {
            return gflopsPerSecond / peakGflops;
        }

        /**
         * @return one line for the CLI
         */
        public String summary() {
            return String.format("bench train: threads=%d steps=%d step=%.1f ms (forward %.1f, backward %.1f, " +
                "adamw %.1f) tokens/s=%.0f model=%.1f GFLOP/s peak-gemm=%.1f GFLOP/s share=%.0f%% loss %.3f -> %.3f",
                threads, steps, msPerStep, msForward, msBackward, msOptimizer, tokensPerSecond, gflopsPerSecond,
                peakGflops, 100 * shareOfPeak(), firstLoss, lastLoss);
        }
    }

    private TrainBenchmark() {
    }

    /**
     * Runs the benchmark.
     *
     * @param config threads, warm-up and timed steps, seed
     * @return the measured figures
     */
    public static Result run(final Config config) {
        final ModelConfig model = ModelConfig.benchModel();
        final int T = model.seqLen();
        final int[] tokens = new int[BATCH * (T + 1)];
        final SplittableRandom random = new SplittableRandom(config.seed() + 1);
        for (int i = 0; i < tokens.length; i++) {
            tokens[i] = random.nextInt(model.vocabSize());
        }
        try (MoeModel m = new MoeModel(model, BATCH, config.threads(), Kernels.FAST, config.seed())) {
            final AdamW adamw = new AdamW(new AdamWConfig(0.9, 0.999, 1e-8, 0.1, 0.0), m.paramSegments());
            final float[] params = m.params();
            final float[] grads = m.grads();
            final Parallel.Task update = (w, workers) -> adamw.updateRange(params, grads,
                Parallel.start(params.length, w, workers, 16), Parallel.start(params.length, w + 1, workers, 16));
            double first = Double.NaN;
            double last = Double.NaN;
            for (int i = 0; i < config.warmupSteps(); i++) {
                final double loss = m.forward(tokens);
                first = i == 0 ? loss : first;
                m.backward();
                adamw.beginStep(3e-4);
                m.parallel().run(update);
            }
            long forwardNs = 0;
            long backwardNs = 0;
            long optimizerNs = 0;
            for (int i = 0; i < config.steps(); i++) {
                final long t0 = System.nanoTime();
                last = m.forward(tokens);
                final long t1 = System.nanoTime();
                m.backward();
                final long t2 = System.nanoTime();
                adamw.beginStep(3e-4);
                m.parallel().run(update);
                final long t3 = System.nanoTime();
                forwardNs += t1 - t0;
                backwardNs += t2 - t1;
                optimizerNs += t3 - t2;
                if (Double.isNaN(first)) {
                    first = last;
                }
            }
            final double stepMs = (forwardNs + backwardNs + optimizerNs) / 1e6 / config.steps();
            final double tokensPerStep = (double) BATCH * T;
            final double peak = PeakFlops.measure(m.parallel(), 20);
            return new Result(config.threads(), config.steps(), stepMs, forwardNs / 1e6 / config.steps(),
                backwardNs / 1e6 / config.steps(), optimizerNs / 1e6 / config.steps(), tokensPerStep / stepMs * 1e3,
                model.flopsPerToken() * tokensPerStep / stepMs / 1e6, peak, first, last);
        }
    }
}
