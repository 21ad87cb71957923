package io.moeflow.trainer;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.lang.management.ManagementFactory;

/**
 * Asserts that a step allocates nothing on the given threads once the JIT has compiled it. Until C2
 * has compiled the Vector API kernels they run as allocating Java fallbacks, and on a busy machine
 * compilation can take a while: windows of steps are measured until one is clean or the time budget
 * is spent. A real per-step allocation makes every window dirty, so the assertion still fails.
 */
public final class AllocationProbe {
    private static final int STEPS_PER_WINDOW = 10;

    private AllocationProbe() {
    }

    /**
     * @param step        one training step
     * @param threadIds   every thread the step runs on
     * @param warmupSteps steps run before measuring
     * @param budgetNs    how long to keep measuring windows before failing
     */
    public static void assertAllocatesNothing(final Runnable step, final long[] threadIds, final int warmupSteps,
                                              final long budgetNs) {
        final com.sun.management.ThreadMXBean mx = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        for (int i = 0; i < warmupSteps; i++) {
            step.run();
        }
        final long[] before = new long[threadIds.length];
        final long deadline = System.nanoTime() + budgetNs;
        long worst;
        int dirty = -1;
        int windows = 0;
        do {
            // one id at a time: the long[] overload allocates its result array on the calling thread
            for (int t = 0; t < threadIds.length; t++) {
                before[t] = mx.getThreadAllocatedBytes(threadIds[t]);
            }
            for (int i = 0; i < STEPS_PER_WINDOW; i++) {
                step.run();
            }
            worst = 0;
            for (int t = 0; t < threadIds.length; t++) {
                final long bytes = mx.getThreadAllocatedBytes(threadIds[t]) - before[t];
                if (bytes > worst) {
                    worst = bytes;
                    dirty = t;
                }
            }
            windows++;
        } while (worst != 0 && System.nanoTime() < deadline);
        assertEquals(0, worst, "bytes allocated over " + STEPS_PER_WINDOW + " steps by "
            + (dirty == 0 ? "the calling thread" : "worker thread " + dirty) + " in the last of " + windows + " windows");
    }

    /** The calling thread followed by the pool's workers. */
    public static long[] callerAndWorkers(final long[] workerIds) {
        final long[] ids = new long[workerIds.length + 1];
        ids[0] = Thread.currentThread().getId();
        System.arraycopy(workerIds, 0, ids, 1, workerIds.length);
        return ids;
    }
}
