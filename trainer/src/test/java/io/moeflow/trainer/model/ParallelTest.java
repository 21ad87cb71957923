package io.moeflow.trainer.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.concurrent.atomic.AtomicIntegerArray;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

class ParallelTest {
    @Test
    void shouldPartitionEveryRangeIntoAlignedContiguousShares() {
        for (final int total : new int[] {0, 1, 15, 16, 17, 128, 1000}) {
            for (int workers = 1; workers <= 5; workers++) {
                for (final int align : new int[] {1, 16}) {
                    assertEquals(0, Parallel.start(total, 0, workers, align));
                    assertEquals(total, Parallel.start(total, workers, workers, align));
                    for (int w = 0; w < workers; w++) {
                        final int a = Parallel.start(total, w, workers, align);
                        final int b = Parallel.start(total, w + 1, workers, align);
                        assertTrue(a <= b, "shares are ordered");
                        assertTrue(a % align == 0 || a == total, "share starts are aligned");
                    }
                }
            }
        }
    }

    @Test
    @Timeout(20)
    void shouldRunEachTaskOnceOnEveryWorker() {
        try (Parallel p = new Parallel(3)) {
            final AtomicIntegerArray runs = new AtomicIntegerArray(3);
            final Parallel.Task task = (w, n) -> {
                assertEquals(3, n);
                runs.incrementAndGet(w);
            };
            for (int i = 0; i < 1000; i++) {
                p.run(task);
            }
            for (int w = 0; w < 3; w++) {
                assertEquals(1000, runs.get(w));
            }
        }
    }

    @Test
    @Timeout(20)
    void shouldRethrowAWorkersFailureOnTheCaller() {
        try (Parallel p = new Parallel(2)) {
            final IllegalStateException e = assertThrows(IllegalStateException.class, () -> p.run((w, n) -> {
                if (w == 1) {
                    throw new ArithmeticException("boom");
                }
            }));
            assertTrue(e.getMessage().contains("worker 1"), e.getMessage());
            assertTrue(e.getCause() instanceof ArithmeticException);
            assertThrows(IllegalStateException.class, () -> p.run((w, n) -> { }), "a failed pool refuses work");
        }
    }

    @Test
    @Timeout(20)
    void shouldTurnAStuckWorkerIntoAnExceptionNotAHang() {
        try (Parallel p = new Parallel(2, 200_000_000L, "stuck-test")) {
            final long start = System.nanoTime();
            final IllegalStateException e = assertThrows(IllegalStateException.class, () -> p.run((w, n) -> {
                if (w == 1) {
                    try {
                        Thread.sleep(3000);
                    } catch (final InterruptedException ignored) {
                        Thread.currentThread().interrupt();
                    }
                }
            }));
            assertTrue(e.getMessage().contains("did not finish"), e.getMessage());
            assertTrue(System.nanoTime() - start < 2_500_000_000L, "gave up near the timeout");
        }
    }

    @Test
    @Timeout(20)
    void shouldStopItsThreadsOnClose() throws InterruptedException {
        final Parallel p = new Parallel(3);
        p.run((w, n) -> { });
        final long[] ids = p.workerThreadIds();
        p.close();
        Thread.sleep(50);
        for (final Thread t : Thread.getAllStackTraces().keySet()) {
            for (final long id : ids) {
                if (t.getId() == id) {
                    assertFalse(t.isAlive(), t.getName() + " still alive");
                }
            }
        }
        assertThrows(IllegalStateException.class, () -> p.run((w, n) -> { }));
    }
}
