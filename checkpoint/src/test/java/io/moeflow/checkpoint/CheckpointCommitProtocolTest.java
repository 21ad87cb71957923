package io.moeflow.checkpoint;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

@Timeout(60)
class CheckpointCommitProtocolTest {
    @TempDir
    Path dir;

    private CheckpointWriter writer(final CheckpointConfig config, final FaultInjector faults) {
        return new CheckpointWriter(config, Fixtures.layout(), Fixtures.METADATA, faults, Fixtures.FIXED_CLOCK);
    }

    private CheckpointConfig sync() {
        return CheckpointConfig.defaults(dir).withAsyncSave(false);
    }

    private List<String> entries() throws IOException {
        try (var children = Files.list(dir)) {
            return children.map(p -> p.getFileName().toString()).filter(n -> !n.equals(CheckpointFormat.WRITER_LOCK))
                .sorted().toList();
        }
    }

    private String latest() throws IOException {
        return Files.readString(dir.resolve("latest")).strip();
    }

    private static List<Long> steps(final List<SaveResult> results) {
        return results.stream().map(SaveResult::step).toList();
    }

    /** Throws at one stage of one step. */
    private static FaultInjector failAt(final SaveStage stage, final long step) {
        return (s, st, path) -> {
            if (s == stage && st == step) {
                throw new IOException("injected fault at " + s);
            }
        };
    }

    @Test
    void shouldKeepTheNewestKAndPointLatestAtTheNewest() throws IOException {
        try (CheckpointWriter w = writer(sync().withKeepLast(2), FaultInjector.NONE)) {
            for (long step = 100; step <= 500; step += 100) {
                Fixtures.save(w, step);
            }
            final List<SaveResult> results = w.pollCompleted();
            assertEquals(List.of(100L, 200L, 300L, 400L, 500L), results.stream().map(SaveResult::step).toList());
            assertEquals(List.of(List.of(), List.of(), List.of(dir.resolve("step-00000100")),
                List.of(dir.resolve("step-00000200")), List.of(dir.resolve("step-00000300"))),
                results.stream().map(SaveResult::removed).toList());
        }
        assertEquals(List.of("latest", "step-00000400", "step-00000500"), entries());
        assertEquals("step-00000500", latest());
    }

    @Test
    void shouldKeepEveryCheckpointWhenKeepLastIsZero() throws IOException {
        try (CheckpointWriter w = writer(sync().withKeepLast(0), FaultInjector.NONE)) {
            for (long step = 1; step <= 4; step++) {
                Fixtures.save(w, step);
            }
        }
        assertEquals(List.of(1L, 2L, 3L, 4L), new CheckpointStore(dir).committedSteps());
    }

    @Test
    void shouldDropCheckpointsBeyondTheStepOfARunResumedFromAnOlderOne() throws IOException {
        try (CheckpointWriter w = writer(sync().withKeepLast(0), FaultInjector.NONE)) {
            Fixtures.save(w, 100);
            Fixtures.save(w, 200);
            Fixtures.save(w, 300);
        }
        try (CheckpointWriter w = writer(sync().withKeepLast(0), FaultInjector.NONE)) {
            Fixtures.save(w, 150);
        }
        assertEquals(List.of(100L, 150L), new CheckpointStore(dir).committedSteps());
        assertEquals("step-00000150", latest());
        assertEquals(150, new CheckpointStore(dir).resolveAuto().orElseThrow().step());
    }

    @Test
    void shouldReplaceAnEarlierSaveOfTheSameStep() throws IOException {
        try (CheckpointWriter w = writer(sync(), FaultInjector.NONE)) {
            Fixtures.save(w, 100);
            Fixtures.save(w, 100);
        }
        assertEquals(List.of("latest", "step-00000100"), entries());
        try (CheckpointReader r = CheckpointReader.open(dir.resolve("step-00000100"))) {
            Fixtures.assertHoldsStep(r, 100);
        }
    }

    @Test
    void shouldPutTheOldCopyBackWhenASaveThatReplacesAStepFailsBetweenItsRenames() throws IOException {
        final FaultInjector failSecondSaveOf100 = new FaultInjector() {
            @Override
            public void at(final SaveStage stage, final long step, final Path path) throws IOException {
                if (stage == SaveStage.REPLACING) {
                    assertTrue(Files.isDirectory(path) && path.getFileName().toString().startsWith(
                        "step-00000100.replaced-"), path.toString());
                    throw new IOException("injected fault between the renames");
                }
            }
        };
        try (CheckpointWriter w = writer(sync(), failSecondSaveOf100)) {
            Fixtures.save(w, 100);
            final CheckpointException e = assertThrows(CheckpointException.class, () -> Fixtures.save(w, 100));
            assertTrue(e.getMessage().contains("between the renames"), e.getMessage());
        }
        assertEquals(List.of("latest", "step-00000100"), entries(), "the first save of step 100 is back in place");
        try (CheckpointReader r = CheckpointReader.open(dir.resolve("step-00000100"))) {
            Fixtures.assertHoldsStep(r, 100);
        }
    }

    @Test
    void shouldRefuseASecondWriterOnTheSameDirectoryWithOneClearError() throws IOException {
        try (CheckpointWriter first = writer(sync(), FaultInjector.NONE)) {
            final CheckpointException e = assertThrows(CheckpointException.class,
                () -> writer(sync(), FaultInjector.NONE));
            assertTrue(e.getMessage().contains("another checkpoint writer is using this directory")
                && e.getMessage().contains(String.valueOf(ProcessHandle.current().pid()))
                && e.getMessage().contains("--run-name"), e.getMessage());
            Fixtures.save(first, 100); // the refused writer changed nothing for the first one
        }
        try (CheckpointWriter again = writer(sync(), FaultInjector.NONE)) {
            Fixtures.save(again, 200); // closing the first released the directory
        }
        assertEquals(List.of("latest", "step-00000100", "step-00000200"), entries());
    }

    @Test
    void shouldCountOnlyValidCheckpointsTowardsKeepLast() throws IOException {
        try (CheckpointWriter w = writer(sync().withKeepLast(2), FaultInjector.NONE)) {
            Fixtures.save(w, 100);
            Fixtures.save(w, 200);
            Fixtures.save(w, 300);
        }
        assertEquals(List.of("latest", "step-00000200", "step-00000300"), entries());
        // Step 300 is damaged on disk (a flipped data byte), then the run goes on from another writer.
        CheckpointValidationTest.flipDataBit(dir.resolve("step-00000300/state.h5"), "optimizer/exp_avg/lnf.weight");
        try (CheckpointWriter w = writer(sync().withKeepLast(2), FaultInjector.NONE)) {
            Fixtures.save(w, 400);
            // Two good ones (400 and 200): the damaged 300 did not count, so 200 was not removed.
            assertEquals(List.of("latest", "step-00000200", "step-00000300", "step-00000400"), entries());
            Fixtures.save(w, 500);
        }
        // 500 and 400 are the two good ones now; 300 (damaged) and 200 are older than them and removed.
        assertEquals(List.of("latest", "step-00000400", "step-00000500"), entries());
    }

    @ParameterizedTest
    @EnumSource(value = SaveStage.class, names = {"FILE_WRITTEN", "BEFORE_FSYNC", "BEFORE_RENAME"})
    void shouldLeaveThePreviousCheckpointCurrentWhenASaveFailsBeforeItsCommit(final SaveStage stage)
        throws IOException {
        try (CheckpointWriter w = writer(sync(), failAt(stage, 200))) {
            Fixtures.save(w, 100);
            final CheckpointException e = assertThrows(CheckpointException.class, () -> Fixtures.save(w, 200));
            assertTrue(e.getMessage().contains("injected fault at " + stage), e.getMessage());
            assertTrue(e.getMessage().contains("the previous checkpoint is intact"), e.getMessage());
        }
        assertEquals(List.of("latest", "step-00000100"), entries(), "the failed save's temporary dir is removed");
        assertEquals("step-00000100", latest());
        final Resolution r = new CheckpointStore(dir).resolveAuto().orElseThrow();
        assertEquals(100, r.step());
        assertEquals(List.of(), r.warnings());
    }

    @Test
    void shouldTreatTheRenameAsTheCommitWhenLatestCouldNotBeUpdated() throws IOException {
        try (CheckpointWriter w = writer(sync(), failAt(SaveStage.BEFORE_LATEST, 200))) {
            Fixtures.save(w, 100);
            final CheckpointException e = assertThrows(CheckpointException.class, () -> Fixtures.save(w, 200));
            assertTrue(e.getMessage().contains("the checkpoint itself is committed"), e.getMessage());
        }
        assertEquals("step-00000100", latest());
        assertEquals(200, new CheckpointStore(dir).resolveAuto().orElseThrow().step());
    }

    @Test
    void shouldRemoveOldCheckpointsOnlyAfterLatestPointsAtTheNewOne() throws IOException {
        final List<String> seenAtRetention = new java.util.ArrayList<>();
        final FaultInjector spy = (stage, step, path) -> {
            if (stage == SaveStage.BEFORE_RETENTION && step == 200) {
                seenAtRetention.add(latest());
                seenAtRetention.addAll(entries());
                throw new IOException("injected fault at " + stage);
            }
        };
        try (CheckpointWriter w = writer(sync().withKeepLast(1), spy)) {
            Fixtures.save(w, 100);
            assertThrows(CheckpointException.class, () -> Fixtures.save(w, 200));
        }
        assertEquals(List.of("step-00000200", "latest", "step-00000100", "step-00000200"), seenAtRetention);
        assertEquals(List.of(100L, 200L), new CheckpointStore(dir).committedSteps());
    }

    @Test
    void shouldReportABackgroundFailureOnTheNextBeginExactlyOnce() throws IOException {
        try (CheckpointWriter w = writer(CheckpointConfig.defaults(dir), failAt(SaveStage.BEFORE_RENAME, 200))) {
            Fixtures.save(w, 100);
            final SaveTicket ticket = Fixtures.save(w, 200);
            assertTrue(ticket.async());
            final CheckpointException e = assertThrows(CheckpointException.class, () -> w.begin(300));
            assertTrue(e.getMessage().contains("save of step 200 failed"), e.getMessage());
            Fixtures.save(w, 300);
            assertEquals(List.of(100L, 300L), steps(w.awaitIdle()), "successes are reported, the failure was thrown");
        }
        assertEquals(List.of("latest", "step-00000100", "step-00000300"), entries());
    }

    @Test
    void shouldReportABackgroundFailureOnClose() {
        final CheckpointWriter w = writer(CheckpointConfig.defaults(dir), failAt(SaveStage.FILE_WRITTEN, 5));
        Fixtures.save(w, 5);
        final CheckpointException e = assertThrows(CheckpointException.class, w::close);
        assertTrue(e.getMessage().contains("injected fault at FILE_WRITTEN"), e.getMessage());
        w.close();
        assertThrows(IllegalStateException.class, () -> w.begin(6));
    }

    @Test
    void shouldGiveUpWaitingForAHungSaveAfterTheTimeout() throws Exception {
        final CountDownLatch release = new CountDownLatch(1);
        final FaultInjector hang = (stage, step, path) -> {
            if (stage == SaveStage.BEFORE_RENAME) {
                try {
                    release.await(30, TimeUnit.SECONDS);
                } catch (final InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
        };
        final CheckpointConfig config = CheckpointConfig.defaults(dir).withSaveTimeoutNs(TimeUnit.MILLISECONDS
            .toNanos(200));
        try (CheckpointWriter w = writer(config, hang)) {
            Fixtures.save(w, 1);
            final CheckpointException e = assertThrows(CheckpointException.class, () -> w.begin(2));
            assertTrue(e.getMessage().contains("still running after"), e.getMessage());
            assertTrue(e.getMessage().contains("may be hung"), e.getMessage());
            release.countDown();
            assertEquals(List.of(1L), steps(w.awaitIdle()));
            Fixtures.save(w, 2);
        }
        assertEquals(List.of(1L, 2L), new CheckpointStore(dir).committedSteps());
    }

    @Test
    void shouldMakeTheSecondSaveWaitForTheFirstAndReportTheStall() throws Exception {
        final CountDownLatch entered = new CountDownLatch(1);
        final CountDownLatch release = new CountDownLatch(1);
        final FaultInjector slow = (stage, step, path) -> {
            if (stage == SaveStage.BEFORE_RENAME && step == 1) {
                entered.countDown();
                try {
                    release.await(30, TimeUnit.SECONDS);
                } catch (final InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
        };
        try (CheckpointWriter w = writer(CheckpointConfig.defaults(dir), slow)) {
            final SaveTicket first = Fixtures.save(w, 1);
            assertTrue(entered.await(30, TimeUnit.SECONDS));
            assertEquals(List.of(), w.pollCompleted(), "the first save is still in flight");
            final Thread releaser = new Thread(() -> {
                try {
                    Thread.sleep(100);
                } catch (final InterruptedException ignored) {
                    Thread.currentThread().interrupt();
                }
                release.countDown();
            });
            releaser.start();
            final SaveTicket second = Fixtures.save(w, 2);
            releaser.join();
            assertTrue(first.stallNs() >= first.waitNs() && first.waitNs() >= 0, first.toString());
            assertTrue(second.waitNs() > 0 && second.stallNs() >= second.waitNs(), second.toString());
            final List<Long> reported = new java.util.ArrayList<>(steps(w.pollCompleted()));
            reported.addAll(steps(w.awaitIdle()));
            assertEquals(List.of(1L, 2L), reported, "each result is reported once, in order");
            assertEquals(List.of(), w.pollCompleted());
        }
    }

    @Test
    void shouldRemoveLeftoversOfDeadProcessesButNotOfLiveOnesAtStart() throws Exception {
        final Process dead = new ProcessBuilder("true").start();
        assertTrue(dead.waitFor(30, TimeUnit.SECONDS));
        final long livePid = ProcessHandle.current().parent().orElseThrow().pid();
        Files.createDirectories(dir.resolve("step-00000300.tmp-" + dead.pid()).resolve("sub"));
        Files.createDirectories(dir.resolve("step-00000100.deleting-" + dead.pid()));
        Files.writeString(dir.resolve("latest.tmp-" + dead.pid()), "step-00000300\n");
        Files.createDirectories(dir.resolve("step-00000400.tmp-" + livePid));
        try (CheckpointWriter w = writer(sync(), FaultInjector.NONE)) {
            assertEquals(3, w.removedAtStart().size(), w.removedAtStart().toString());
        }
        assertEquals(List.of("step-00000400.tmp-" + livePid), entries());
    }

    @Test
    void shouldLeaveNoTemporaryFilesAfterSuccessfulSaves() throws IOException {
        try (CheckpointWriter w = writer(CheckpointConfig.defaults(dir).withKeepLast(1), FaultInjector.NONE)) {
            Fixtures.save(w, 1);
            Fixtures.save(w, 2);
        }
        assertEquals(List.of("latest", "step-00000002"), entries());
        assertFalse(Files.exists(dir.resolve("step-00000001")));
    }
}
