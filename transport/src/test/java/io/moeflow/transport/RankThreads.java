package io.moeflow.transport;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/** Runs one body per rank on its own thread and rethrows the first failure; every wait is bounded. */
public final class RankThreads {
    /** The body of one rank. */
    @FunctionalInterface
    public interface RankBody {
        void run(int rank) throws Exception;
    }

    private RankThreads() {
    }

    /** Runs {@code body} for ranks 0..size-1 concurrently; fails if any throws or if they take longer than {@code timeoutMs}. */
    public static void run(final int size, final long timeoutMs, final RankBody body) {
        final Throwable[] errors = new Throwable[size];
        final List<Thread> threads = new ArrayList<>();
        for (int r = 0; r < size; r++) {
            final int rank = r;
            final Thread t = new Thread(() -> {
                try {
                    body.run(rank);
                } catch (final Throwable e) {
                    errors[rank] = e;
                }
            }, "rank-" + r);
            t.setDaemon(true);
            threads.add(t);
            t.start();
        }
        final long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMs);
        for (final Thread t : threads) {
            try {
                t.join(Math.max(1, TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime())));
            } catch (final InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new AssertionError("interrupted", e);
            }
            if (t.isAlive()) {
                throw new AssertionError(t.getName() + " still running after " + timeoutMs + " ms");
            }
        }
        for (int r = 0; r < size; r++) {
            if (errors[r] != null) {
                throw new AssertionError("rank " + r + " failed: " + errors[r], errors[r]);
            }
        }
    }

    /** Deterministic pseudo-random floats in [-1, 1) for rank {@code rank} (same on every run). */
    public static float[] values(final long seed, final int rank, final int n) {
        final java.util.SplittableRandom random = new java.util.SplittableRandom(seed * 1_000_003L + rank);
        final float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) (random.nextDouble() * 2 - 1);
        }
        return v;
    }
}
