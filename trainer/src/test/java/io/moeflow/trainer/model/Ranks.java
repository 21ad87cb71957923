package io.moeflow.trainer.model;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/** Runs one body per rank on its own thread and rethrows the first failure; the whole run is bounded in time. */
final class Ranks {
    /** The body of one rank. */
    @FunctionalInterface
    interface RankBody {
        void run(int rank) throws Exception;
    }

    private Ranks() {
    }

    static void run(final int size, final long timeoutMs, final RankBody body) {
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
}
