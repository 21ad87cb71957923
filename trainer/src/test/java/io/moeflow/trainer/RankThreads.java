package io.moeflow.trainer;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.BiFunction;

import io.moeflow.transport.Communicator;
import io.moeflow.transport.CommunicatorConfig;
import io.moeflow.transport.inprocess.InProcessCluster;

/** Runs the ranks of a job as threads of the test JVM over the in-process transport. */
final class RankThreads {
    /** A dead or stuck rank fails its peers within this, so a broken test ends instead of hanging. */
    static final CommunicatorConfig TEST_CONFIG = CommunicatorConfig.DEFAULT.withOpTimeoutNs(TimeUnit.SECONDS.toNanos(20));

    private RankThreads() {
    }

    /**
     * Runs {@code body(rank, world)} on {@code worldSize} threads and returns the results in rank order;
     * the first failure (or a rank still running after {@code timeoutSeconds}) fails the call.
     */
    static <T> List<T> run(final int worldSize, final long timeoutSeconds,
                           final BiFunction<Integer, Communicator, T> body) throws Exception {
        try (InProcessCluster cluster = InProcessCluster.create(worldSize)) {
            final List<Communicator> comms = cluster.communicators(TEST_CONFIG);
            final ExecutorService pool = Executors.newFixedThreadPool(worldSize);
            try {
                final List<Future<T>> futures = new ArrayList<>();
                for (int r = 0; r < worldSize; r++) {
                    final int rank = r;
                    futures.add(pool.submit(() -> {
                        try (Communicator world = comms.get(rank)) {
                            return body.apply(rank, world);
                        }
                    }));
                }
                final long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(timeoutSeconds);
                final List<T> results = new ArrayList<>();
                for (int r = 0; r < worldSize; r++) {
                    try {
                        results.add(futures.get(r).get(Math.max(1, deadline - System.nanoTime()), TimeUnit.NANOSECONDS));
                    } catch (final ExecutionException e) {
                        throw new AssertionError("rank " + r + " failed: " + e.getCause(), e.getCause());
                    } catch (final TimeoutException e) {
                        throw new AssertionError("rank " + r + " still running after " + timeoutSeconds + " s", e);
                    }
                }
                return results;
            } finally {
                pool.shutdownNow();
                if (!pool.awaitTermination(30, TimeUnit.SECONDS)) {
                    throw new AssertionError("rank threads did not stop within 30 s");
                }
            }
        }
    }
}
