package io.moeflow.launcher;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.LocalDateTime;
import java.time.format.DateTimeFormatter;

/** The directory of one run, {@code <runs-dir>/<name>/}. */
final class RunDirectory {
    private static final DateTimeFormatter STAMP = DateTimeFormatter.ofPattern("yyyyMMdd-HHmmss");

    private RunDirectory() {
    }

    /** A name for a run nobody named: {@code prefix} and this second, e.g. {@code run-20261203-213045}. */
    static String timestampedName(final String prefix) {
        return prefix + LocalDateTime.now().format(STAMP);
    }

    /** Creates a new run directory; refuses a name that is in use, so two runs never mix their files. */
    static Path create(final Path runsDir, final String name) {
        final Path dir = resolve(runsDir, name);
        if (Files.exists(dir)) {
            throw new IllegalArgumentException("--run-name " + name + ": " + dir + " already exists; pick another name, "
                + "or continue that run with --resume auto");
        }
        return createOrReuse(runsDir, name);
    }

    /** Run {@code name}'s directory, created if it does not exist yet (resuming a run that may not have started). */
    static Path createOrReuse(final Path runsDir, final String name) {
        final Path dir = resolve(runsDir, name);
        try {
            return Files.createDirectories(dir);
        } catch (final IOException e) {
            throw new UncheckedIOException("cannot create the run directory " + dir + ": " + e.getMessage(), e);
        }
    }

    /** The run a checkpoint belongs to: {@code <run>/checkpoints/step-<N>}. */
    static Path ofCheckpoint(final Path checkpoint) {
        final Path checkpoints = checkpoint.toAbsolutePath().normalize().getParent();
        if (checkpoints == null || !checkpoints.getFileName().toString().equals("checkpoints")
            || !Files.isDirectory(checkpoint)) {
            throw new IllegalArgumentException("--resume " + checkpoint + ": expected a checkpoint directory "
                + "runs/<name>/checkpoints/step-<N>, or 'auto' with --run-name");
        }
        return checkpoints.getParent();
    }

    /** The directory of run {@code name}, after checking the name is a plain directory name. */
    static Path resolve(final Path runsDir, final String name) {
        if (name.isBlank() || !name.matches("[A-Za-z0-9._-]+") || name.equals(".") || name.equals("..")) {
            throw new IllegalArgumentException("--run-name '" + name + "': use letters, digits, '.', '_' and '-' only");
        }
        return runsDir.resolve(name);
    }
}
