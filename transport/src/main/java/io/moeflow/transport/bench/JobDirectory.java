package io.moeflow.transport.bench;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

import org.agrona.IoUtil;

/**
 * The directory of one benchmark job under {@code /dev/shm}: Aeron's log buffers (hundreds of MB of
 * memory, since /dev/shm is RAM), the job token and the workers' logs. It is deleted when the job
 * ends, also on Ctrl-C (a shutdown hook). A coordinator killed with SIGKILL runs no hook, so each
 * directory names its owner's pid in {@value #OWNER_FILE}, and the next job removes the directories
 * whose owner is gone ({@link #removeAbandoned}).
 */
public final class JobDirectory implements AutoCloseable {
    /** The file holding the coordinator's pid, in decimal. */
    public static final String OWNER_FILE = "owner.pid";

    private final Path dir;
    private final Thread shutdownHook;

    private JobDirectory(final Path dir) {
        this.dir = dir;
        this.shutdownHook = new Thread(() -> deleteTree(dir), "moeflow-job-dir-cleanup");
    }

    /** Creates {@code root/name}, owned by this process, deleted at {@link #close()} or JVM exit. */
    public static JobDirectory create(final Path root, final String name) throws IOException {
        final JobDirectory job = new JobDirectory(root.resolve(name));
        Files.createDirectories(job.dir);
        Files.writeString(job.dir.resolve(OWNER_FILE), Long.toString(ProcessHandle.current().pid()), StandardCharsets.US_ASCII);
        Runtime.getRuntime().addShutdownHook(job.shutdownHook);
        return job;
    }

    /** The directory. */
    public Path path() {
        return dir;
    }

    /**
     * Deletes the directories {@code root/<prefix>*} whose owner file names a process that no longer
     * runs (a directory without an owner file, or one this user may not delete, is left alone).
     *
     * @return the directories removed
     */
    public static List<Path> removeAbandoned(final Path root, final String prefix) {
        final List<Path> removed = new ArrayList<>();
        if (!Files.isDirectory(root)) {
            return removed;
        }
        try (DirectoryStream<Path> dirs = Files.newDirectoryStream(root, prefix + "*")) {
            for (final Path candidate : dirs) {
                final Optional<Long> owner = ownerPid(candidate);
                if (owner.isPresent() && !ProcessHandle.of(owner.get()).map(ProcessHandle::isAlive).orElse(false)
                    && deleteTree(candidate)) {
                    removed.add(candidate);
                }
            }
        } catch (final IOException e) {
            System.err.println("moeflow: could not list " + root + " to remove abandoned job directories: " + e.getMessage());
        }
        return removed;
    }

    private static Optional<Long> ownerPid(final Path candidate) {
        try {
            return Optional.of(Long.parseLong(Files.readString(candidate.resolve(OWNER_FILE), StandardCharsets.US_ASCII).trim()));
        } catch (final IOException | NumberFormatException e) {
            return Optional.empty();
        }
    }

    /** Deletes the directory now and forgets the shutdown hook. */
    @Override
    public void close() {
        deleteTree(dir);
        try {
            Runtime.getRuntime().removeShutdownHook(shutdownHook);
        } catch (final IllegalStateException shuttingDown) {
            // the hook is running or has run: nothing left to forget
        }
    }

    /** True if {@code tree} is gone afterwards. */
    private static boolean deleteTree(final Path tree) {
        IoUtil.delete(tree.toFile(), true);
        if (Files.exists(tree)) {
            System.err.println("moeflow: could not delete all of " + tree);
            return false;
        }
        return true;
    }
}
