package io.moeflow.checkpoint;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalLong;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;

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

    /** {@link #loadAuto(Loader, ShardConfig)}: rank 0 found no committed checkpoint. */
    private static final long NONE = -1;
    /** {@link #loadAuto(Loader, ShardConfig)}: rank 0 found checkpoints, none of which loads. */
    private static final long NOTHING_LOADS = -2;
    private static final long LOADED = 0;
    private static final long DAMAGED = 1;
    private static final long FAILED = 2;

    private final Path directory;
    /** Names of the checkpoint directories this process wrote or fully verified (retention validates each once). */
    private final Set<String> verified = ConcurrentHashMap.newKeySet();

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
        return new ArrayList<>(committed().keySet());
    }

    /**
     * The committed checkpoints by step: {@code step-N}, or when only its moved-aside copy exists (a replacing save was
     * interrupted between its two renames) {@code step-N.replaced-<pid>}.
     */
    TreeMap<Long, Path> committed() {
        final TreeMap<Long, Path> out = new TreeMap<>();
        final TreeMap<Long, Path> replaced = new TreeMap<>();
        for (final Path child : children()) {
            final String name = child.getFileName().toString();
            final OptionalLong step = CheckpointFormat.parseStep(name);
            if (step.isPresent() && Files.isDirectory(child)) {
                out.put(step.getAsLong(), child);
            }
            final OptionalLong aside = CheckpointFormat.parseReplacedStep(name);
            if (aside.isPresent() && Files.isDirectory(child)) {
                replaced.put(aside.getAsLong(), child);
            }
        }
        replaced.forEach(out::putIfAbsent);
        return out;
    }

    /** Records that a checkpoint directory is known to be complete and intact (written or verified by this process). */
    void markVerified(final Path checkpoint) {
        verified.add(checkpoint.getFileName().toString());
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
        return loadAuto(CheckpointReader::verify);
    }

    /**
     * Reads a checkpoint, the way a resume should: for each tensor once, its checksum checked as it is read.
     * Implementations read whatever they need; a {@link CheckpointException} with
     * {@link CheckpointException#dataDamaged()} makes {@link #loadAuto} fall back to an older checkpoint, so a loader
     * must set all of its state from the checkpoint (a later load overwrites a partial one).
     */
    @FunctionalInterface
    public interface Loader {
        /** Reads what the caller needs from an opened (structurally valid) checkpoint. */
        void load(CheckpointReader reader);
    }

    /**
     * Loads the newest committed checkpoint that opens ({@link CheckpointReader#open}: manifest, sizes, HDF5 structure)
     * and whose data the loader reads without a checksum failure: every tensor is read once. Newer ones that fail are
     * skipped, each with a warning in the result. A failure that is not damage (the loader's own exceptions, a layout
     * of another model) is thrown at once: an older checkpoint would not fit either.
     *
     * @return empty when the directory holds no committed checkpoint at all (a fresh run)
     * @throws CheckpointException when checkpoints exist but none loads; it lists every failure
     */
    public Optional<Resolution> loadAuto(final Loader loader) {
        final TreeMap<Long, Path> committed = committed();
        if (committed.isEmpty()) {
            return Optional.empty();
        }
        final List<String> warnings = new ArrayList<>();
        for (final Path candidate : committed.descendingMap().values()) {
            final CheckpointReader reader;
            try {
                reader = CheckpointReader.open(candidate);
            } catch (final CheckpointException e) {
                warnings.add("skipped " + e.getMessage());
                continue;
            }
            try (reader) {
                loader.load(reader);
                return Optional.of(new Resolution(candidate, reader.step(), warnings));
            } catch (final CheckpointException e) {
                if (!e.dataDamaged()) {
                    throw e;
                }
                warnings.add("skipped " + e.getMessage());
            }
        }
        throw new CheckpointException(directory, null, null,
            "none of the " + committed.size() + " committed checkpoints validates:\n  " + String.join("\n  ",
                warnings), "start the run afresh, or repair a checkpoint and point --resume at it");
    }

    /**
     * {@link #loadAuto(Loader)} for one rank of a job: rank 0 chooses the checkpoint (the newest committed one that
     * opens and has not failed to load on some rank) and broadcasts its step through {@code shard}'s exchange, so the
     * ranks never resume from different steps; every rank loads it (reading what it needs, by name: a checkpoint of
     * any world size, sharded or not); then the ranks exchange whether their load succeeded. If some rank found
     * damaged data, all of them move on to the next older checkpoint together; any other failure on any rank stops
     * every rank. Every rank calls it at the same point.
     *
     * @return empty on every rank when rank 0 found no committed checkpoint (a fresh run)
     * @throws CheckpointException on every rank when no checkpoint loads on all ranks, or some rank failed otherwise
     */
    public Optional<Resolution> loadAuto(final Loader loader, final ShardConfig shard) {
        final List<String> warnings = new ArrayList<>();
        final java.util.Set<Long> failed = new java.util.HashSet<>();
        final boolean root = shard.rank() == 0;
        while (true) {
            long chosen = NONE;
            if (root) {
                for (final Map.Entry<Long, Path> c : committed().descendingMap().entrySet()) {
                    if (failed.contains(c.getKey())) {
                        continue;
                    }
                    try (CheckpointReader ignored = CheckpointReader.open(c.getValue())) {
                        chosen = c.getKey();
                        break;
                    } catch (final CheckpointException e) {
                        warnings.add("skipped " + e.getMessage());
                        failed.add(c.getKey());
                    }
                }
                if (chosen == NONE && !failed.isEmpty()) {
                    chosen = NOTHING_LOADS;
                }
            }
            chosen = shard.allGather(chosen)[0];
            if (chosen == NONE) {
                return Optional.empty();
            }
            if (chosen == NOTHING_LOADS) {
                throw new CheckpointException(directory, null, null, "none of the committed checkpoints loads on "
                    + "every rank" + (root ? ":\n  " + String.join("\n  ", warnings) : " (rank 0's log lists why)"),
                    "start the run afresh, or repair a checkpoint and point --resume at it");
            }
            final Path checkpoint = committed().get(chosen);
            long outcome = LOADED;
            RuntimeException failure = null;
            try (CheckpointReader reader = CheckpointReader.open(checkpoint)) {
                loader.load(reader);
            } catch (final CheckpointException e) {
                failure = e;
                outcome = e.dataDamaged() ? DAMAGED : FAILED;
            } catch (final RuntimeException e) {
                failure = e;
                outcome = FAILED;
            }
            final long[] outcomes = shard.allGather(outcome);
            int failedRank = -1;
            int damagedRank = -1;
            for (int r = 0; r < outcomes.length; r++) {
                if (outcomes[r] == FAILED && failedRank < 0) {
                    failedRank = r;
                }
                if (outcomes[r] == DAMAGED && damagedRank < 0) {
                    damagedRank = r;
                }
            }
            if (failedRank >= 0) {
                if (failure != null && outcome == FAILED) {
                    throw failure;
                }
                throw new CheckpointException(checkpoint, null, null, "rank " + failedRank + " could not load this "
                    + "checkpoint (its log says why)", "fix the cause on that rank; the job cannot resume without it");
            }
            if (damagedRank < 0) {
                return Optional.of(new Resolution(checkpoint, chosen, warnings));
            }
            warnings.add("skipped " + (failure != null ? failure.getMessage() : checkpoint + ": rank " + damagedRank
                + " found damaged data in it"));
            failed.add(chosen);
        }
    }

    /**
     * Loads a specific checkpoint directory, strictly (no fallback): it must open and the loader must read it without
     * a checksum failure.
     *
     * @throws CheckpointException saying why it cannot be used
     */
    public Resolution load(final Path checkpoint, final Loader loader) {
        rejectRunDirectory(checkpoint);
        try (CheckpointReader reader = CheckpointReader.open(checkpoint)) {
            loader.load(reader);
            return new Resolution(checkpoint, reader.step(), List.of());
        }
    }

    /**
     * A specific checkpoint directory, strictly: it must validate, with no fallback.
     *
     * @throws CheckpointException saying why it cannot be used
     */
    public Resolution resolve(final Path checkpoint) {
        return load(checkpoint, CheckpointReader::verify);
    }

    private static void rejectRunDirectory(final Path checkpoint) {
        if (Files.isDirectory(checkpoint) && !Files.exists(checkpoint.resolve(CheckpointFormat.MANIFEST))
            && !Files.exists(checkpoint.resolve(CheckpointFormat.SHARDED_METADATA))
            && !new CheckpointStore(checkpoint).committedSteps().isEmpty()) {
            throw new CheckpointException(checkpoint, null, null,
                "this is a run's checkpoints directory, not one checkpoint",
                "use --resume auto, or one of its step-NNNNNNNN directories");
        }
    }

    /** Whether a checkpoint opens and every checksum matches; remembered, so each directory is verified once. */
    private boolean verifiedOnce(final Path checkpoint) {
        final String name = checkpoint.getFileName().toString();
        if (verified.contains(name)) {
            return true;
        }
        try (CheckpointReader reader = CheckpointReader.open(checkpoint)) {
            reader.verify();
        } catch (final CheckpointException e) {
            return false;
        }
        verified.add(name);
        return true;
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
            final OptionalLong replacedStep = CheckpointFormat.parseReplacedStep(name);
            if (replacedStep.isPresent()) {
                final String owner = name.substring(name.lastIndexOf('-') + 1);
                if (!isAlive(parsePid(owner).orElse(-1))) {
                    putBack(child, replacedStep.getAsLong(), removed);
                }
            }
        }
        return removed;
    }

    /**
     * A checkpoint moved aside by a replacing save that died: deleted when the replacement is in place, else renamed
     * back (it is then the only copy of its step).
     */
    private void putBack(final Path aside, final long step, final List<Path> removed) throws IOException {
        final Path committed = directoryOf(step);
        if (Files.exists(committed)) {
            DurableFiles.deleteRecursively(aside);
            removed.add(aside);
        } else {
            Files.move(aside, committed, StandardCopyOption.ATOMIC_MOVE);
            DurableFiles.fsyncDirectory(directory);
        }
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
        int kept = 0;
        for (final Map.Entry<Long, Path> c : committed().descendingMap().entrySet()) {
            final long step = c.getKey();
            if (step > newest) {
                removed.add(remove(c.getValue(), step, pid));
                continue;
            }
            if (keepLast == 0) {
                continue;
            }
            // Only checkpoints that validate count towards keep-last, so a damaged one never pushes out a good one;
            // a damaged one is removed once keep-last good ones are newer than it.
            if (step == newest || verifiedOnce(c.getValue())) {
                if (kept < keepLast) {
                    kept++;
                    continue;
                }
            } else if (kept < keepLast) {
                continue;
            }
            removed.add(remove(c.getValue(), step, pid));
        }
        return removed;
    }

    /**
     * Removes a committed checkpoint without ever leaving a half-deleted {@code step-N}: renames it to
     * {@code step-N.deleting-<pid>} first, then deletes that.
     */
    Path remove(final Path committed, final long step, final long pid) throws IOException {
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
