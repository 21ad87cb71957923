package io.moeflow.trainer.model;

import java.util.concurrent.atomic.AtomicLongArray;
import java.util.concurrent.locks.LockSupport;

/**
 * A fixed pool of {@code threads} workers for data-parallel kernels: worker 0 is the calling thread, workers
 * 1..threads-1 are daemon threads owned by the pool.
 * <p>
 * {@link #run(Task)} hands the same pre-built {@link Task} to every worker with its index; the task splits its work
 * with the static partition {@link #start(int, int, int, int)}, so which element a worker computes depends only on
 * (size, worker, workers), never on timing. Dispatch allocates nothing: workers spin briefly on a generation counter
 * (a step issues a few dozen dispatches back to back), then park until the next dispatch unparks them.
 * <p>
 * Every wait is bounded: if a worker does not finish within {@code timeoutNs}, {@link #run(Task)} throws
 * {@link IllegalStateException} naming the worker, and the pool refuses further work. A task that throws on any worker
 * is rethrown on the caller (as the cause of an {@link IllegalStateException} for workers other than the caller).
 * Not reentrant and not for concurrent callers: one thread drives the pool.
 */
public final class Parallel implements AutoCloseable {
    /**
     * Work run on every worker; {@code worker} in [0, workers). Implementations are pre-built objects whose inputs
     * are set in fields before {@link #run(Task)}.
     */
    @FunctionalInterface
    public interface Task {
        /**
         * @param worker  this worker's index, 0 is the calling thread
         * @param workers the pool size
         */
        void run(int worker, int workers);
    }

    /** Default bound on one dispatch: long enough for any kernel of a real model, short enough to fail a stuck run. */
    public static final long DEFAULT_TIMEOUT_NS = 120_000_000_000L;

    /**
     * How long an idle worker spins before parking: covers the gaps between the kernels of one training step,
     * including a worker waiting out the other's longer share of a big stage. At 300 us workers parked inside a
     * bench step and the unpark cost 50-130 us per dispatch after the big stages (0.35-0.5 ms per step in all).
     */
    private static final long SPIN_NS = 2_000_000L;
    private static final int PAD = 16;

    private final int threads;
    private final long timeoutNs;
    private final Thread[] workers;
    private final AtomicLongArray done;
    private final AtomicLongArray sleeping;
    private volatile long generation;
    private volatile Task current;
    private volatile boolean running = true;
    private volatile Throwable failure;
    private volatile int failedWorker = -1;
    private boolean broken;
    private boolean inside;

    /**
     * Starts {@code threads - 1} daemon workers.
     *
     * @param threads   pool size including the caller, >= 1
     * @param timeoutNs bound on one {@link #run(Task)}, > 0
     * @param name      thread name prefix
     */
    public Parallel(final int threads, final long timeoutNs, final String name) {
        if (threads < 1) {
            throw new IllegalArgumentException("threads=" + threads + " must be >= 1");
        }
        if (timeoutNs <= 0) {
            throw new IllegalArgumentException("timeoutNs=" + timeoutNs + " must be > 0");
        }
        this.threads = threads;
        this.timeoutNs = timeoutNs;
        this.done = new AtomicLongArray(threads * PAD);
        this.sleeping = new AtomicLongArray(threads * PAD);
        this.workers = new Thread[threads];
        for (int w = 1; w < threads; w++) {
            final int index = w;
            final Thread t = new Thread(() -> workLoop(index), name + "-" + w);
            t.setDaemon(true);
            workers[w] = t;
            t.start();
        }
    }

    /**
     * @param threads pool size including the caller
     */
    public Parallel(final int threads) {
        this(threads, DEFAULT_TIMEOUT_NS, "moeflow-worker");
    }

    /**
     * @return the pool size, including the calling thread
     */
    public int threads() {
        return threads;
    }

    /**
     * @return ids of the pool's own threads (workers 1..threads-1), e.g. for allocation accounting
     */
    public long[] workerThreadIds() {
        final long[] ids = new long[threads - 1];
        for (int w = 1; w < threads; w++) {
            ids[w - 1] = workers[w].getId();
        }
        return ids;
    }

    /**
     * First index of worker {@code worker}'s share of [0, total), in whole blocks of {@code align} elements (the
     * last worker takes the remainder); the share of worker w is [start(w), start(w + 1)).
     *
     * @param total   elements to split
     * @param worker  worker index, may be {@code workers} to get the end
     * @param workers pool size
     * @param align   block size, >= 1 (e.g. 16 floats for one vector)
     * @return the start of that worker's range
     */
    public static int start(final int total, final int worker, final int workers, final int align) {
        final int blocks = (total + align - 1) / align;
        final int b = (int) ((long) blocks * worker / workers);
        return Math.min(total, b * align);
    }

    /**
     * Runs {@code task} on every worker (the caller is worker 0) and returns when all have finished.
     *
     * @param task the work
     * @throws IllegalStateException if a worker failed, or did not finish within the timeout
     */
    public void run(final Task task) {
        if (broken) {
            throw new IllegalStateException("Parallel pool is broken by an earlier failure or timeout; close it and " +
                "build a new model");
        }
        if (inside) {
            throw new IllegalStateException("Parallel.run is not reentrant: a task called run() again");
        }
        if (!running) {
            throw new IllegalStateException("Parallel pool is closed");
        }
        inside = true;
        try {
            if (threads == 1) {
                task.run(0, 1);
                return;
            }
            current = task;
            final long g = generation + 1;
            generation = g;
            for (int w = 1; w < threads; w++) {
                if (sleeping.get(w * PAD) != 0) {
                    LockSupport.unpark(workers[w]);
                }
            }
            Throwable own = null;
            try {
                task.run(0, threads);
            } catch (final Throwable t) {
                own = t;
            }
            awaitWorkers(g);
            current = null;
            if (own != null) {
                rethrow(own);
            }
            final Throwable f = failure;
            if (f != null) {
                broken = true;
                throw new IllegalStateException("Parallel worker " + failedWorker + " failed: " + f, f);
            }
        } finally {
            inside = false;
        }
    }

    private void awaitWorkers(final long g) {
        final long startNs = System.nanoTime();
        int spins = 0;
        for (int w = 1; w < threads; w++) {
            while (done.get(w * PAD) != g) {
                if (++spins < 20_000) {
                    Thread.onSpinWait();
                    continue;
                }
                if (System.nanoTime() - startNs > timeoutNs) {
                    broken = true;
                    throw new IllegalStateException("Parallel worker " + w + " did not finish within timeoutNs=" +
                        timeoutNs + " (stuck or starved); the pool is now unusable");
                }
                Thread.yield();
            }
        }
    }

    private void workLoop(final int w) {
        long seen = 0;
        while (running) {
            long g = generation;
            if (g == seen) {
                final long idleStart = System.nanoTime();
                while ((g = generation) == seen && running) {
                    if (System.nanoTime() - idleStart < SPIN_NS) {
                        Thread.onSpinWait();
                    } else {
                        sleeping.set(w * PAD, 1);
                        if (generation == seen && running) {
                            LockSupport.parkNanos(1_000_000L);
                        }
                        sleeping.set(w * PAD, 0);
                    }
                }
                if (!running) {
                    return;
                }
            }
            seen = g;
            try {
                current.run(w, threads);
            } catch (final Throwable t) {
                failedWorker = w;
                failure = t;
            }
            done.set(w * PAD, g);
        }
    }

    private static void rethrow(final Throwable t) {
        if (t instanceof RuntimeException r) {
            throw r;
        }
        if (t instanceof Error e) {
            throw e;
        }
        throw new IllegalStateException(t);
    }

    /**
     * Stops the worker threads (waits at most one second for each).
     */
    @Override
    public void close() {
        if (!running) {
            return;
        }
        running = false;
        for (int w = 1; w < threads; w++) {
            LockSupport.unpark(workers[w]);
        }
        for (int w = 1; w < threads; w++) {
            try {
                workers[w].join(1000);
            } catch (final InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            }
        }
    }
}
