package io.moeflow.trainer.bench;

import io.moeflow.trainer.kernels.FastOps;
import io.moeflow.trainer.model.Parallel;

/**
 * The machine's practical peak for our kernels: the best GFLOP/s of one large GEMM (y = x W^T, x [1024, 512],
 * W [1024, 512], 1.07 GFLOP) run with the fast kernel over the given worker pool, columns split like the model's
 * linear layers. The bench reports the model's throughput as a share of this figure.
 */
public final class PeakFlops {
    private static final int ROWS = 1024;
    private static final int IN = 512;
    private static final int OUT = 1024;

    private PeakFlops() {
    }

    /**
     * @param parallel   the pool to run on (its thread count is what is measured)
     * @param repetitions GEMMs to time after a warm-up; the best one counts
     * @return GFLOP/s of the best repetition
     */
    public static double measure(final Parallel parallel, final int repetitions) {
        final float[] x = new float[ROWS * IN];
        final float[] w = new float[OUT * IN];
        final float[] y = new float[ROWS * OUT];
        for (int i = 0; i < x.length; i++) {
            x[i] = (i % 17) * 0.01f;
        }
        for (int i = 0; i < w.length; i++) {
            w[i] = (i % 13) * 0.01f;
        }
        final float[][] scratch = new float[parallel.threads()][IN * (OUT + 16) + 2 * (OUT + 16)];
        final Parallel.Task gemm = (worker, workers) -> {
            final int o0 = Parallel.start(OUT, worker, workers, 16);
            final int o1 = Parallel.start(OUT, worker + 1, workers, 16);
            FastOps.INSTANCE.linearForward(x, 0, w, 0, -1, y, 0, ROWS, IN, OUT, o0, o1, scratch[worker]);
        };
        for (int i = 0; i < 10; i++) {
            parallel.run(gemm);
        }
        long bestNs = Long.MAX_VALUE;
        for (int i = 0; i < repetitions; i++) {
            final long t0 = System.nanoTime();
            parallel.run(gemm);
            bestNs = Math.min(bestNs, System.nanoTime() - t0);
        }
        return 2.0 * ROWS * IN * OUT / bestNs;
    }
}
