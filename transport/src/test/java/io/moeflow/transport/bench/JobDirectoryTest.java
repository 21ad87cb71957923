package io.moeflow.transport.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class JobDirectoryTest {
    @TempDir
    Path root;

    @Test
    void shouldDeleteItsDirectoryWithEverythingInsideOnClose() throws IOException {
        final Path dir;
        try (JobDirectory job = JobDirectory.create(root, "moeflow-bench-a")) {
            dir = job.path();
            Files.createDirectories(dir.resolve("aeron-ipc"));
            Files.write(dir.resolve("aeron-ipc").resolve("log"), new byte[4096]);
            assertEquals(Long.toString(ProcessHandle.current().pid()),
                Files.readString(dir.resolve(JobDirectory.OWNER_FILE), StandardCharsets.US_ASCII));
        }
        assertFalse(Files.exists(dir));
    }

    @Test
    void shouldRemoveOnlyDirectoriesWhoseOwnerIsGone() throws Exception {
        final long deadPid = pidOfAFinishedProcess();
        final Path abandoned = jobDir("moeflow-bench-dead", Long.toString(deadPid));
        Files.write(abandoned.resolve("term.logbuffer"), new byte[1024]);
        final Path running = jobDir("moeflow-bench-alive", Long.toString(ProcessHandle.current().pid()));
        final Path unowned = Files.createDirectories(root.resolve("moeflow-bench-old"));
        final Path garbled = jobDir("moeflow-bench-garbled", "not a pid");
        final Path otherPrefix = jobDir("other-dead", Long.toString(deadPid));

        final List<Path> removed = JobDirectory.removeAbandoned(root, "moeflow-bench-");

        assertEquals(List.of(abandoned), removed);
        assertFalse(Files.exists(abandoned));
        assertTrue(Files.exists(running), "its owner (this JVM) still runs");
        assertTrue(Files.exists(unowned), "no owner file: not ours to judge");
        assertTrue(Files.exists(garbled), "an unreadable owner file is left alone");
        assertTrue(Files.exists(otherPrefix), "outside the prefix");
    }

    @Test
    void shouldFindNothingToRemoveUnderAMissingRoot() {
        assertEquals(List.of(), JobDirectory.removeAbandoned(root.resolve("absent"), "moeflow-"));
    }

    private Path jobDir(final String name, final String owner) throws IOException {
        final Path dir = Files.createDirectories(root.resolve(name));
        Files.writeString(dir.resolve(JobDirectory.OWNER_FILE), owner, StandardCharsets.US_ASCII);
        return dir;
    }

    /** The pid of a process that has exited (the kernel may reuse it later; not within this test). */
    private static long pidOfAFinishedProcess() throws IOException, InterruptedException {
        final Process process = new ProcessBuilder("true").start();
        assertTrue(process.waitFor(30, TimeUnit.SECONDS), "true did not exit");
        return process.pid();
    }
}
