package io.moeflow.checkpoint;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Kills a real child JVM (SIGKILL, no shutdown hooks, no finally blocks) in the middle of a save and checks that the
 * previous checkpoint still loads and that {@code auto} picks the right one.
 */
@Tag("slow")
@Timeout(180)
class KillDuringSaveTest {
    private static final long LINE_TIMEOUT_S = 120;

    @TempDir
    Path dir;

    /** A running child JVM whose output lines arrive in a queue, so every wait has a timeout. */
    private static final class Child implements AutoCloseable {
        final Process process;
        final BlockingQueue<String> lines = new LinkedBlockingQueue<>();
        final List<String> seen = new ArrayList<>();

        Child(final String... args) throws IOException {
            final List<String> command = new ArrayList<>();
            command.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
            for (final String flag : System.getProperty("moeflow.jvm.flags", "").split("\\s+")) {
                if (!flag.isBlank()) {
                    command.add(flag);
                }
            }
            command.add("-Xmx256m");
            command.add("-cp");
            command.add(System.getProperty("java.class.path"));
            command.add(CrashingSaveMain.class.getName());
            command.addAll(List.of(args));
            process = new ProcessBuilder(command).redirectErrorStream(true).start();
            final Thread pump = new Thread(() -> {
                try (BufferedReader r = new BufferedReader(new InputStreamReader(process.getInputStream(),
                    StandardCharsets.UTF_8))) {
                    for (String line = r.readLine(); line != null; line = r.readLine()) {
                        lines.add(line);
                    }
                } catch (final IOException ignored) {
                    // The process was killed.
                }
            }, "child-output");
            pump.setDaemon(true);
            pump.start();
        }

        /** Waits for a line starting with {@code prefix}; fails with the output so far if none comes. */
        String await(final String prefix) throws InterruptedException {
            final long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(LINE_TIMEOUT_S);
            while (System.nanoTime() < deadline) {
                final String line = lines.poll(1, TimeUnit.SECONDS);
                if (line != null) {
                    seen.add(line);
                    if (line.startsWith(prefix)) {
                        return line;
                    }
                } else if (!process.isAlive() && lines.isEmpty()) {
                    break;
                }
            }
            throw new AssertionError("no line starting with '" + prefix + "' from the child; output:\n"
                + String.join("\n", seen));
        }

        void kill() throws InterruptedException {
            process.destroyForcibly();
            assertTrue(process.waitFor(60, TimeUnit.SECONDS), "the child did not die");
        }

        @Override
        public void close() {
            process.destroyForcibly();
            try {
                process.waitFor(60, TimeUnit.SECONDS);
            } catch (final InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }

    @ParameterizedTest
    @EnumSource(value = SaveStage.class, mode = EnumSource.Mode.EXCLUDE,
        names = {"REPLACING", "BEFORE_METADATA"})
    void shouldResumeFromTheLastCommittedCheckpointAfterAKillAtEachStage(final SaveStage stage) throws Exception {
        final long childPid;
        try (Child child = new Child(dir.toString(), stage.name())) {
            child.await("COMMITTED 100");
            child.await("PAUSED " + stage);
            childPid = child.process.pid();
            child.kill();
        }
        final boolean committedBeforeKill = stage == SaveStage.BEFORE_LATEST || stage == SaveStage.BEFORE_RETENTION;
        final CheckpointStore store = new CheckpointStore(dir);
        final Path leftover = dir.resolve("step-00000200.tmp-" + childPid);
        assertEquals(!committedBeforeKill, Files.isDirectory(leftover), "interrupted save's temporary directory");
        assertEquals(committedBeforeKill ? List.of(100L, 200L) : List.of(100L), store.committedSteps());
        assertEquals(stage == SaveStage.BEFORE_RETENTION ? "step-00000200" : "step-00000100",
            store.latestPointer().orElseThrow());

        final long expected = committedBeforeKill ? 200 : 100;
        final Resolution resolution = store.resolveAuto().orElseThrow();
        assertEquals(expected, resolution.step());
        assertEquals(List.of(), resolution.warnings());
        try (CheckpointReader r = CheckpointReader.open(resolution.directory())) {
            Fixtures.assertHoldsStep(r, expected);
        }

        // The next run cleans up after the dead one and saves normally.
        try (CheckpointWriter w = new CheckpointWriter(CheckpointConfig.defaults(dir).withKeepLast(1),
            Fixtures.layout(), Fixtures.METADATA)) {
            assertEquals(committedBeforeKill ? List.of() : List.of(leftover), w.removedAtStart());
            Fixtures.save(w, 300);
            w.awaitIdle();
        }
        assertEquals(List.of(300L), store.committedSteps());
        assertFalse(Files.exists(leftover));
    }

    @Test
    void shouldKeepTheOnlyCopyOfAStepWhenKilledBetweenTheTwoRenamesOfASaveThatReplacesIt() throws Exception {
        final long childPid;
        try (Child child = new Child(dir.toString(), SaveStage.REPLACING.name())) {
            child.await("COMMITTED 200");
            child.await("PAUSED " + SaveStage.REPLACING);
            childPid = child.process.pid();
            // While it lives, the child holds the directory: a second writer gets one clear error naming it.
            final CheckpointException locked = assertThrows(CheckpointException.class, () -> new CheckpointWriter(
                CheckpointConfig.defaults(dir), Fixtures.layout(), Fixtures.METADATA).close());
            assertTrue(locked.getMessage().contains("another checkpoint writer")
                && locked.getMessage().contains(String.valueOf(childPid)), locked.getMessage());
            child.kill();
        }
        // Killed after step-200 was moved aside and before the new step-200 took its place.
        final Path aside = dir.resolve("step-00000200.replaced-" + childPid);
        assertTrue(Files.isDirectory(aside), "the old copy, moved aside");
        assertFalse(Files.exists(dir.resolve("step-00000200")));
        final CheckpointStore store = new CheckpointStore(dir);
        assertEquals(List.of(200L), store.committedSteps(), "the moved-aside copy still counts as step 200");
        final Resolution resolution = store.resolveAuto().orElseThrow();
        assertEquals(200, resolution.step(), "auto resumes from step 200, not from scratch");
        try (CheckpointReader r = CheckpointReader.open(resolution.directory())) {
            Fixtures.assertHoldsStep(r, 200);
        }

        // The next writer (now allowed: the lock died with the child) moves it back under its name.
        try (CheckpointWriter w = new CheckpointWriter(CheckpointConfig.defaults(dir).withKeepLast(1),
            Fixtures.layout(), Fixtures.METADATA)) {
            assertFalse(Files.exists(aside));
            try (CheckpointReader r = CheckpointReader.open(dir.resolve("step-00000200"))) {
                Fixtures.assertHoldsStep(r, 200);
            }
            Fixtures.save(w, 200);
            w.awaitIdle();
        }
        assertEquals(List.of(200L), store.committedSteps());
        assertEquals(dir.resolve("step-00000200"), store.resolveAuto().orElseThrow().directory());
    }

    @Test
    void shouldNeverResumeFromAShardedSaveKilledBeforeRankZeroWroteItsMetadata() throws Exception {
        final long childPid;
        try (Child child = new Child(dir.toString(), "sharded")) {
            child.await("COMMITTED 100");
            child.await("PAUSED " + SaveStage.BEFORE_METADATA);
            childPid = child.process.pid();
            child.kill();
        }
        final Path leftover = dir.resolve("step-00000200.tmp-" + childPid);
        assertTrue(Files.isDirectory(leftover.resolve("rank-00000")) && Files.isDirectory(leftover.resolve("rank-00001")),
            "both parts were written");
        assertFalse(Files.exists(leftover.resolve(CheckpointFormat.SHARDED_METADATA)));
        final CheckpointStore store = new CheckpointStore(dir);
        assertEquals(List.of(100L), store.committedSteps());
        final Resolution resolution = store.resolveAuto().orElseThrow();
        assertEquals(100, resolution.step());
        assertEquals(List.of(), resolution.warnings());

        // The restarted job (two ranks again) removes the dead save and commits its own.
        final ShardedCheckpointTest.ThreadExchange exchange = new ShardedCheckpointTest.ThreadExchange(2);
        final List<Object> results = ShardedCheckpointTest.onRanks(2, rank -> {
            try (CheckpointWriter w = new CheckpointWriter(CheckpointConfig.defaults(dir).withAsyncSave(false),
                Fixtures.partLayout(rank, 2), Fixtures.METADATA, FaultInjector.NONE, Fixtures.FIXED_CLOCK,
                new ShardConfig(rank, 2, exchange.forRank(rank), java.util.Map.of()))) {
                ShardedCheckpointTest.save(w, 300, rank);
                return w.removedAtStart();
            }
        });
        assertEquals(List.of(List.of(leftover), List.of()), results, "rank 0 removed the leftover");
        assertEquals(List.of(100L, 300L), store.committedSteps());
        try (CheckpointReader r = CheckpointReader.open(store.directoryOf(300))) {
            Fixtures.assertHoldsStep(r, 300);
        }
    }

    @ParameterizedTest
    @ValueSource(longs = {11, 12, 13})
    void shouldAlwaysFindAValidCheckpointAfterAKillAtAnArbitraryMoment(final long seed) throws Exception {
        final SplittableRandom random = new SplittableRandom(seed);
        try (Child child = new Child(dir.toString(), "loop")) {
            child.await("COMMITTED 3");
            Thread.sleep(random.nextInt(60));
            child.kill();
        }
        final CheckpointStore store = new CheckpointStore(dir);
        final List<Long> committed = store.committedSteps();
        assertFalse(committed.isEmpty());
        for (final long step : committed) {
            try (CheckpointReader r = CheckpointReader.open(store.directoryOf(step))) {
                r.verify();
                Fixtures.assertHoldsStep(r, step);
            }
        }
        final Resolution resolution = store.resolveAuto().orElseThrow();
        assertEquals(committed.get(committed.size() - 1), resolution.step());
        assertEquals(List.of(), resolution.warnings());
    }
}
