package io.moeflow.checkpoint;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.OptionalLong;

/**
 * A run's checkpoints directory ({@code runs/<name>/checkpoints}): which checkpoints are committed, which one to
 * resume from, and the housekeeping of the commit protocol (pointer, retention, leftovers of interrupted saves).
 *
 * <p>A directory named {@code step-NNNNNNNN} is committed: the save renamed it into place only after every file in it
 * was written and synced. {@code latest} names the newest committed one for people and scripts; resolution scans the
 * directories themselves, so a crash between the rename and the pointer update loses nothing.
 */
public final class CheckpointStore {
    /** The word that asks for the newest valid checkpoint. */
    public static final String AUTO = "auto";

    private final Path directory;

    /** @param directory the run's checkpoints directory (need not exist yet) */
    public CheckpointStore(final Path directory) {
        this.directory = directory;
    }

    /** The checkpoints directory. */
    public Path directory() {
        return directory;
    }

    /** The directory a step is committed under. */
    public Path directoryOf(final long step) {
        return directory.resolve(CheckpointFormat.directoryName(step));
    }

    /** Steps of the committed checkpoints, ascending (whether or not they validate). */
    public List<Long> committedSteps() {
        final List<Long> steps = new ArrayList<>();
        for (final Path child : children()) {
            final OptionalLong step = CheckpointFormat.parseStep(child.getFileName().toString());
            if (step.isPresent() && Files.isDirectory(child)) {
                steps.add(step.getAsLong());
            }
        }
        steps.sort(null);
        return steps;
    }

    /** What the {@code latest} pointer names, if the file exists. */
    public Optional<String> latestPointer() {
        final Path latest = directory.resolve(CheckpointFormat.LATEST);
        try {
            return Files.isRegularFile(latest)
                ? Optional.of(Files.readString(latest, StandardCharsets.UTF_8).strip()) : Optional.empty();
        } catch (final IOException e) {
            return Optional.empty();
        }
    }

    /**
     * Resolves a {@code --resume} argument: {@value #AUTO} is the newest checkpoint that validates (see
     * {@link #resolveAuto()}), anything else is a checkpoint directory that must validate itself.
     *
     * @throws CheckpointException if nothing valid is found; the message lists what was tried
     */
    public Resolution resolve(final String spec) {
        if (AUTO.equals(spec)) {
            return resolveAuto().orElseThrow(() -> new CheckpointException(directory, null, null,
                "there is no committed checkpoint to resume from",
                "start the run without --resume, or point --resume at a checkpoint directory"));
        }
        return resolve(Path.of(spec));
    }

    /**
     * The newest committed checkpoint that passes {@link CheckpointReader#open} and {@link CheckpointReader#verify()}.
     * Newer ones that fail are skipped, each with a warning in the result.
     *
     * @return empty when the directory holds no committed checkpoint at all (a fresh run)
     * @throws CheckpointException when checkpoints exist but none validates; it lists every failure
     */
    public Optional<Resolution> resolveAuto() {
        final List<Long> steps = committedSteps();
        if (steps.isEmpty()) {
            return Optional.empty();
        }
        final List<String> warnings = new ArrayList<>();
        for (int i = steps.size() - 1; i >= 0; i--) {
            final Path candidate = directoryOf(steps.get(i));
            try {
                validate(candidate);
                return Optional.of(new Resolution(candidate, steps.get(i), warnings));
            } catch (final CheckpointException e) {
                warnings.add("skipped " + e.getMessage());
            }
        }
        throw new CheckpointException(directory, null, null,
            "none of the " + steps.size() + " committed checkpoints validates:\n  " + String.join("\n  ", warnings),
            "start the run afresh, or repair a checkpoint and point --resume at it");
    }

    /**
     * A specific checkpoint directory, strictly: it must validate, with no fallback.
     *
     * @throws CheckpointException saying why it cannot be used
     */
    public Resolution resolve(final Path checkpoint) {
        if (Files.isDirectory(checkpoint) && !Files.exists(checkpoint.resolve(CheckpointFormat.MANIFEST))
            && !new CheckpointStore(checkpoint).committedSteps().isEmpty()) {
            throw new CheckpointException(checkpoint, null, null,
                "this is a run's checkpoints directory, not one checkpoint",
                "use --resume auto, or one of its step-NNNNNNNN directories");
        }
        return new Resolution(checkpoint, validate(checkpoint), List.of());
    }

    /** Opens and fully verifies a checkpoint; returns its step. */
    private static long validate(final Path checkpoint) {
        try (CheckpointReader reader = CheckpointReader.open(checkpoint)) {
            reader.verify();
            return reader.step();
        }
    }

    /**
     * Removes what interrupted saves left behind: {@code *.tmp-<pid>} and {@code *.deleting-<pid>} directories and
     * {@code latest.tmp-<pid>} files whose process is gone (a live process may still be writing them).
     *
     * @return the paths removed
     */
    List<Path> removeLeftovers() throws IOException {
        final List<Path> removed = new ArrayList<>();
        for (final Path child : children()) {
            final String name = child.getFileName().toString();
            OptionalLong pid = CheckpointFormat.temporaryOwnerPid(name);
            if (pid.isEmpty() && name.startsWith(CheckpointFormat.LATEST + ".tmp-")) {
                pid = parsePid(name.substring(CheckpointFormat.LATEST.length() + ".tmp-".length()));
            }
            if (pid.isPresent() && !isAlive(pid.getAsLong())) {
                DurableFiles.deleteRecursively(child);
                removed.add(child);
            }
        }
        return removed;
    }

    /**
     * Applies retention after step {@code newest} was committed and {@code latest} points to it: removes committed
     * checkpoints beyond the newest {@code keepLast} ({@code 0}: keep all), and any with a step above {@code newest},
     * which belong to a run that was resumed from an older checkpoint and continued past them.
     *
     * @return the directories removed
     */
    List<Path> applyRetention(final long newest, final int keepLast, final long pid) throws IOException {
        final List<Path> removed = new ArrayList<>();
        final List<Long> steps = committedSteps();
        int kept = 0;
        for (int i = steps.size() - 1; i >= 0; i--) {
            final long step = steps.get(i);
            final boolean keep = step <= newest && (keepLast == 0 || kept < keepLast);
            if (keep) {
                kept++;
                continue;
            }
            removed.add(remove(step, pid));
        }
        return removed;
    }

    /**
     * Removes a committed checkpoint without ever leaving a half-deleted {@code step-N}: renames it to
     * {@code step-N.deleting-<pid>} first, then deletes that.
     */
    Path remove(final long step, final long pid) throws IOException {
        final Path committed = directoryOf(step);
        final Path doomed = directory.resolve(CheckpointFormat.deletingName(step, pid));
        DurableFiles.deleteRecursively(doomed);
        Files.move(committed, doomed, StandardCopyOption.ATOMIC_MOVE);
        DurableFiles.fsyncDirectory(directory);
        DurableFiles.deleteRecursively(doomed);
        return committed;
    }

    /** Points {@code latest} at a committed step, atomically. */
    void writeLatest(final long step, final long pid) throws IOException {
        DurableFiles.replaceAtomically(directory.resolve(CheckpointFormat.LATEST),
            CheckpointFormat.directoryName(step) + "\n", pid);
    }

    private List<Path> children() {
        final List<Path> out = new ArrayList<>();
        if (!Files.isDirectory(directory)) {
            return out;
        }
        try (DirectoryStream<Path> stream = Files.newDirectoryStream(directory)) {
            stream.forEach(out::add);
        } catch (final IOException e) {
            throw new CheckpointException(directory, null, null, "cannot list the directory: " + e,
                "check that it is readable", e);
        }
        return out;
    }

    private static OptionalLong parsePid(final String text) {
        try {
            return OptionalLong.of(Long.parseLong(text));
        } catch (final NumberFormatException e) {
            return OptionalLong.empty();
        }
    }

    private static boolean isAlive(final long pid) {
        // Our own pid counts as gone: one writer per directory, so a leftover with our pid is from an earlier failure.
        return pid != ProcessHandle.current().pid() && ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false);
    }
}
