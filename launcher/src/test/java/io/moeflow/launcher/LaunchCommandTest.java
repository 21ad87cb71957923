package io.moeflow.launcher;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** Bad launch input: one clear line, exit code 2, within seconds, and no worker JVM started. */
@Timeout(60)
class LaunchCommandTest {
    @TempDir
    Path runs;

    private CliRun launch(final String... args) {
        return CliRun.of(args);
    }

    @Test
    void shouldSayThePortIsBusyAndWhatToDo() throws IOException {
        try (ServerSocket taken = new ServerSocket(0, 1, InetAddress.getByName("127.0.0.1"))) {
            final int port = taken.getLocalPort();
            final CliRun run = launch("launch", "--nproc-per-node", "2", "--master-port", Integer.toString(port), "train",
                "--run-name", "busy", "--runs-dir", runs.toString(), "--steps", "5");
            assertEquals(2, run.exitCode(), run.err());
            assertTrue(run.err().contains("moeflow launch: --master-port " + port + ": cannot listen on 127.0.0.1:" + port), run.err());
            assertTrue(run.err().contains("pick another with --master-port, or 0 for any free port"), run.err());
            assertFalse(Files.exists(runs.resolve("busy")), "no run directory, so the same command with a free port works");
        }
    }

    @Test
    void shouldSayJavaIsMissing() {
        final CliRun run = launch("launch", "--nproc-per-node", "2", "--java", "/nonexistent/jdk/bin/java", "train", "--runs-dir",
            runs.toString(), "--steps", "5");
        assertEquals(2, run.exitCode(), run.err());
        assertTrue(run.err().contains("moeflow launch: --java /nonexistent/jdk/bin/java: no such executable; install Java 17"), run.err());
    }

    @Test
    void shouldRejectBadTrainOptionsBeforeStartingWorkers() {
        final CliRun run = launch("launch", "--nproc-per-node", "2", "train", "--runs-dir", runs.toString(), "--run-name", "bad",
            "--stepz", "5");
        assertEquals(2, run.exitCode(), run.err());
        assertTrue(run.err().contains("moeflow launch: train options: Unknown options: '--stepz', '5'"), run.err());
        assertFalse(Files.exists(runs.resolve("bad")), "nothing created");
    }

    @Test
    void shouldRejectAGlobalBatchThatDoesNotSplitOverTheRanks() {
        final CliRun run = launch("launch", "--nproc-per-node", "3", "train", "--runs-dir", runs.toString(), "--batch-size", "16");
        assertEquals(2, run.exitCode(), run.err());
        assertTrue(run.err().contains("--batch-size 16 with --nproc-per-node 3: the global batch must split evenly over the ranks; "
            + "give a multiple of 3"), run.err());
    }

    @Test
    void shouldLaunchTrainOnly() {
        final CliRun run = launch("launch", "--nproc-per-node", "2", "eval");
        assertEquals(2, run.exitCode(), run.err());
        assertTrue(run.err().contains("'eval': launch runs train only"), run.err());
    }

    @Test
    void shouldRefuseAnExistingRunWithoutResume() throws IOException {
        Files.createDirectories(runs.resolve("taken"));
        final CliRun run = launch("launch", "--nproc-per-node", "2", "train", "--runs-dir", runs.toString(), "--run-name", "taken");
        assertEquals(2, run.exitCode(), run.err());
        assertTrue(run.err().contains("already exists; pick another name, or continue that run with --resume auto"), run.err());
    }
}
