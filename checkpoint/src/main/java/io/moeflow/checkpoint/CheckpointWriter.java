package io.moeflow.checkpoint;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Clock;
import java.time.format.DateTimeFormatter;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.zip.CRC32;

/**
 * Writes a run's checkpoints: atomically, with checksums, and (by default) in the background.
 *
 * <p>A save is {@link #begin} (waits, bounded, for the previous save), puts of every tensor of the layout (each one
 * copies the caller's data into staging buffers allocated once), then {@link #commit}, which returns as soon as the
 * background thread has the staged copy. The background write:
 * <ol>
 * <li>computes each dataset's CRC-32 and writes {@code model.h5}, {@code state.h5} and {@code manifest.txt} into
 * {@code step-N.tmp-<pid>/};</li>
 * <li>fsyncs the files and that directory;</li>
 * <li>renames it to {@code step-N} and fsyncs the checkpoints directory: this rename is the commit;</li>
 * <li>replaces {@code latest} atomically (temp file, fsync, rename, fsync);</li>
 * <li>removes checkpoints beyond keep-last, each renamed to {@code .deleting-<pid>} before it is deleted.</li>
 * </ol>
 * A crash at any point leaves every previously committed checkpoint intact; leftovers of interrupted saves are
 * removed when the next writer starts. A failure of a background save is thrown by the next {@link #begin},
 * {@link #pollCompleted}, {@link #awaitIdle} or {@link #close}, never dropped.
 *
 * <p>One writer per checkpoints directory: the writer holds {@code writer.lock} (an OS file lock, released when the
 * process dies) from construction to {@link #close}, and a second writer fails at construction with a
 * {@link CheckpointException} naming the holder's pid. Not thread-safe: call it from the training thread only.
 */
public final class CheckpointWriter implements AutoCloseable {
    /**
     * 8 MiB: jHDF's row-sized writes are gathered into writes of this size; large enough that system-call overhead is
     * negligible next to the copy, small enough to allocate once per writer.
     */
    static final int COALESCE_BUFFER_BYTES = 8 << 20;

    /** 1 MiB: the buffer staged rows pass through (as little-endian bytes) on their way into the CRC. */
    static final int SCRATCH_BYTES = 1 << 20;

    /**
     * Completed saves kept for {@link #pollCompleted} when the caller does not poll: results are informational (a
     * failure is always thrown, never queued), so a caller that never polls loses only old success reports.
     */
    static final int MAX_UNREPORTED = 8;

    private final CheckpointConfig config;
    private final CheckpointLayout layout;
    private final RunMetadata metadata;
    private final FaultInjector faults;
    private final Clock clock;
    private final CheckpointStore store;
    private final Staging staging;
    private final long[] crc32;
    private final CRC32 crc = new CRC32();
    private final ByteBuffer scratch = LittleEndian.allocate(SCRATCH_BYTES);
    private final ByteBuffer coalesceBuffer;
    private final ExecutorService executor;
    private final long pid = ProcessHandle.current().pid();
    /** Sharded saves: this rank's place in the job; null for a one-process writer. */
    private final ShardConfig shard;
    /**
     * The pid that names temporary directories: this process's, or for a sharded job rank 0's (so every rank writes
     * into the same {@code step-N.tmp-<pid>}, and the next writer removes it once that process is gone).
     */
    private final long ownerPid;
    private final List<Path> removedAtStart;
    /** Held from construction to {@link #close}: a second writer on the directory fails at once. */
    private final WriterLock lock;
    /** Completed saves not yet returned by {@link #pollCompleted}, oldest first, at most {@link #MAX_UNREPORTED}. */
    private final ArrayDeque<SaveResult> unreported = new ArrayDeque<>();
    /** String attributes of the current save, written on both files' roots. */
    private final Map<String, String> saveAttributes = new LinkedHashMap<>();

    /** The snapshot being filled, between {@code begin} and {@code commit}; null otherwise. */
    private Snapshot current;
    private long beganNs;
    private long waitNs;
    private Future<Part> inFlight;
    private long inFlightStep;
    private boolean closed;

    /** A writer with no fault injection and the system UTC clock. */
    public CheckpointWriter(final CheckpointConfig config, final CheckpointLayout layout, final RunMetadata metadata) {
        this(config, layout, metadata, FaultInjector.NONE, Clock.systemUTC());
    }

    /**
     * Creates the checkpoints directory if needed, removes leftovers of interrupted saves (see
     * {@link #removedAtStart()}), and allocates the staging buffers: as much memory as the layout's data.
     *
     * @param faults called at each {@link SaveStage} of every save
     * @param clock  the source of the {@code created_utc} attribute
     * @throws CheckpointException if the directory cannot be created or cleaned
     */
    public CheckpointWriter(final CheckpointConfig config, final CheckpointLayout layout, final RunMetadata metadata,
        final FaultInjector faults, final Clock clock) {
        this(config, layout, metadata, faults, clock, null);
    }

    /**
     * A writer for one rank of a job that saves sharded checkpoints ({@code shard} non-null): every rank writes the
     * tensors of its own {@code layout} (replicated tensors in exactly one rank's layout) into its part
     * {@code rank-NNNNN/} of a shared temporary directory; once every rank has written and synced its part (the
     * barrier is {@link ShardConfig#exchange()}), rank 0 writes {@code metadata.txt}, then commits the directory as
     * for one process. Every rank constructs its writer at the same point (the constructor exchanges rank 0's pid).
     *
     * <p>The exchange runs on the caller's thread only: with {@code asyncSave}, each rank writes its part in the
     * background and the barrier and commit happen at the writer's next {@link #begin}, {@link #commitPending},
     * {@link #awaitIdle} or {@link #close}, which every rank must reach at the same step; {@link #pollCompleted} never
     * commits a sharded save. Without {@code asyncSave}, {@link #commit} commits.
     *
     * @param shard this rank's place in the job, or null for a one-process writer
     */
    public CheckpointWriter(final CheckpointConfig config, final CheckpointLayout layout, final RunMetadata metadata,
        final FaultInjector faults, final Clock clock, final ShardConfig shard) {
        this.shard = shard;
        this.config = config;
        this.layout = layout;
        this.metadata = metadata;
        this.faults = faults;
        this.clock = clock;
        this.store = new CheckpointStore(config.directory());
        try {
            Files.createDirectories(config.directory());
        } catch (final IOException e) {
            throw new CheckpointException(config.directory(), null, null, "cannot prepare the directory: " + e,
                "check that the path is writable", e);
        }
        this.lock = WriterLock.acquire(config.directory(), CheckpointFormat.writerLock(shard == null ? 0
            : shard.rank()));
        try {
            // Only rank 0 cleans up; the exchange below makes every rank wait until it has.
            this.removedAtStart = shard == null || shard.rank() == 0 ? List.copyOf(store.removeLeftovers()) : List.of();
        } catch (final IOException | RuntimeException e) {
            lock.close();
            throw new CheckpointException(config.directory(), null, null, "cannot prepare the directory: " + e,
                "check that the path is writable", e);
        }
        try {
            this.ownerPid = shard == null ? pid : shard.allGather(pid)[0];
        } catch (final RuntimeException e) {
            lock.close();
            throw new CheckpointException(config.directory(), null, null, "rank " + shard.rank() + " could not meet "
                + "the other ranks to start checkpointing: " + e, "check that every rank started", e);
        }
        this.staging = new Staging(layout);
        this.crc32 = new long[layout.size()];
        this.coalesceBuffer = ByteBuffer.allocateDirect(COALESCE_BUFFER_BYTES);
        this.executor = config.asyncSave() ? Executors.newSingleThreadExecutor(r -> {
            final Thread t = new Thread(r, "moeflow-checkpoint-writer");
            // A daemon: if the JVM exits mid-save, the save is abandoned like a crash, which the protocol survives.
            t.setDaemon(true);
            return t;
        }) : null;
    }

    /** Leftovers of interrupted saves removed when this writer started (for the caller to log). */
    public List<Path> removedAtStart() {
        return removedAtStart;
    }

    /** Whether this writer is one rank's of a sharded job (its saves commit at {@link #commitPending} and the like). */
    public boolean sharded() {
        return shard != null;
    }

    /** The checkpoints directory this writer commits into. */
    public CheckpointStore store() {
        return store;
    }

    /**
     * Starts a save of {@code step}: waits (at most {@code saveTimeoutNs}) for the save in flight, then returns the
     * snapshot to put every tensor into. A snapshot that was begun and never committed is discarded.
     *
     * @throws CheckpointException if the previous save failed or is still running after the timeout
     */
    public Snapshot begin(final long step) {
        ensureOpen();
        if (step < 0) {
            throw new IllegalArgumentException("step=" + step + " must be >= 0");
        }
        beganNs = System.nanoTime();
        current = null;
        report(finishInFlight());
        waitNs = System.nanoTime() - beganNs;
        staging.reset();
        saveAttributes.clear();
        current = new Snapshot(step);
        return current;
    }

    /**
     * Hands the snapshot to the writer. Asynchronous: returns once the background thread has it. Synchronous: returns
     * when the checkpoint is committed.
     *
     * @throws IllegalStateException if a tensor of the layout was not put, or the snapshot is not the current one
     * @throws CheckpointException    if a synchronous save fails
     */
    public SaveTicket commit(final Snapshot snapshot) {
        ensureOpen();
        if (snapshot == null || snapshot != current) {
            throw new IllegalStateException("commit of a snapshot that is not the one returned by the last begin()");
        }
        final List<String> missing = staging.missing(5);
        if (!missing.isEmpty()) {
            throw new IllegalStateException("the snapshot of step " + snapshot.step + " lacks tensors of the layout, "
                + "e.g. " + missing + "; put every tensor before commit");
        }
        current = null;
        final long step = snapshot.step;
        if (executor != null) {
            // One process: the whole save in the background. Sharded: this rank's part; the commit needs the barrier,
            // which runs on the caller's thread (finishInFlight).
            inFlight = executor.submit(() -> shard == null ? committed(step, writePart(step)) : writePart(step));
            inFlightStep = step;
        } else {
            Part part = null;
            RuntimeException failure = null;
            try {
                part = writePart(step);
            } catch (final RuntimeException e) {
                failure = e;
            }
            report(finish(step, part, failure));
        }
        return new SaveTicket(step, waitNs, System.nanoTime() - beganNs, executor != null);
    }

    /**
     * The saves that completed since the last call, oldest first, without waiting (usually none or one; an empty
     * list allocates nothing, so this may be called every step).
     *
     * @throws CheckpointException if the save in flight failed
     */
    public List<SaveResult> pollCompleted() {
        ensureOpen();
        if (shard == null && inFlight != null && inFlight.isDone()) {
            report(finishInFlight());
        }
        if (unreported.isEmpty()) {
            return List.of();
        }
        final List<SaveResult> out = List.copyOf(unreported);
        unreported.clear();
        return out;
    }

    /**
     * Waits (at most {@code saveTimeoutNs}) until no save is in flight, then returns what {@link #pollCompleted}
     * would.
     *
     * @throws CheckpointException if the save failed or did not finish in time
     */
    public List<SaveResult> awaitIdle() {
        ensureOpen();
        report(finishInFlight());
        return pollCompleted();
    }

    /**
     * Finishes the save in flight now: waits (bounded) for this rank's part, then (sharded) meets the other ranks and
     * lets rank 0 commit. A sharded job's trainer calls it on every rank at the same step, for example the step after
     * a save, so that the checkpoint commits without waiting for the next save. Returns what {@link #awaitIdle} does.
     */
    public List<SaveResult> commitPending() {
        return awaitIdle();
    }

    private void report(final SaveResult result) {
        if (result != null) {
            if (unreported.size() == MAX_UNREPORTED) {
                unreported.removeFirst();
            }
            unreported.addLast(result);
        }
    }

    /**
     * Waits for the save in flight (bounded) and stops the background thread.
     *
     * @throws CheckpointException if that save failed or did not finish in time
     */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        try {
            finishInFlight();
        } finally {
            closed = true;
            if (executor != null) {
                executor.shutdownNow();
            }
            lock.close();
        }
    }

    private void ensureOpen() {
        if (closed) {
            throw new IllegalStateException("the checkpoint writer for " + config.directory() + " is closed");
        }
    }

    /** Waits for the save in flight and finishes it; returns its result, or null when there was none. */
    private SaveResult finishInFlight() {
        if (inFlight == null) {
            return null;
        }
        final Future<Part> future = inFlight;
        Part part = null;
        RuntimeException failure = null;
        try {
            part = future.get(config.saveTimeoutNs(), TimeUnit.NANOSECONDS);
            inFlight = null;
        } catch (final TimeoutException e) {
            failure = new CheckpointException(config.directory(), null, null, "the save of step " + inFlightStep
                + " is still running after " + TimeUnit.NANOSECONDS.toMillis(config.saveTimeoutNs()) + " ms",
                "the disk or file system may be hung; check it (raise saveTimeoutNs if saves are this slow)", e);
            if (shard == null) {
                throw (CheckpointException) failure;
            }
        } catch (final InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new CheckpointException(config.directory(), null, null, "interrupted while waiting for the save "
                + "of step " + inFlightStep, "", e);
        } catch (final ExecutionException e) {
            inFlight = null;
            failure = e.getCause() instanceof CheckpointException ce ? ce : new CheckpointException(config.directory(),
                null, null, "the save of step " + inFlightStep + " failed: " + e.getCause(),
                "the previous checkpoint is intact", e.getCause());
        }
        return finish(inFlightStep, part, failure);
    }

    /**
     * This rank's part of a save, written and synced (for one process: the whole temporary directory), and the result
     * once committed.
     */
    private record Part(Path tmp, long bytes, long checksumNs, long writeNs, long syncNs, SaveResult result) {
    }

    private Part committed(final long step, final Part part) {
        return new Part(part.tmp(), part.bytes(), part.checksumNs(), part.writeNs(), part.syncNs(),
            commitDirectory(step, part, 0));
    }

    /**
     * Completes a save whose part is written ({@code part}) or failed ({@code failure}): one process commits at once;
     * a sharded job first meets at the barrier, then rank 0 writes the metadata and commits, and a second exchange
     * tells every rank whether the commit happened.
     */
    private SaveResult finish(final long step, final Part part, final RuntimeException failure) {
        if (shard == null) {
            if (failure != null) {
                throw failure;
            }
            return part.result() != null ? part.result() : commitDirectory(step, part, 0);
        }
        final long[] written = exchange(step, "after writing the parts", part != null ? 1 : 0);
        final int failedRank = firstZero(written);
        if (failedRank >= 0) {
            if (shard.rank() == 0) {
                deleteQuietly(config.directory().resolve(CheckpointFormat.temporaryName(step, ownerPid)));
            }
            if (failure != null) {
                throw failure;
            }
            throw new CheckpointException(config.directory(), null, null, "the save of step " + step + " failed on "
                + "rank " + failedRank + " (its log says why), so rank 0 did not commit it",
                "the previous checkpoint is intact");
        }
        SaveResult result = null;
        RuntimeException commitFailure = null;
        if (shard.rank() == 0) {
            try {
                final long metadataBytes = writeMetadata(step, part.tmp());
                result = commitDirectory(step, part, metadataBytes);
            } catch (final RuntimeException e) {
                commitFailure = e;
            }
        }
        final long committed = exchange(step, "after rank 0's commit", commitFailure == null ? 1 : 0)[0];
        if (commitFailure != null) {
            throw commitFailure;
        }
        if (committed == 0) {
            throw new CheckpointException(config.directory(), null, null, "rank 0 could not commit the save of step "
                + step + " (its log says why)", "the previous checkpoint is intact");
        }
        return result != null ? result : new SaveResult(step, store.directoryOf(step), part.bytes(),
            part.checksumNs(), part.writeNs(), part.syncNs(), 0, List.of());
    }

    private long[] exchange(final long step, final String when, final long value) {
        try {
            return shard.allGather(value);
        } catch (final RuntimeException e) {
            throw new CheckpointException(config.directory(), null, null, "rank " + shard.rank() + " could not meet "
                + "the other ranks " + when + " of step " + step + ": " + e, "the previous checkpoint is intact", e);
        }
    }

    private static int firstZero(final long[] values) {
        for (int i = 0; i < values.length; i++) {
            if (values[i] == 0) {
                return i;
            }
        }
        return -1;
    }

    /**
     * Rank 0, once every part is synced: indexes the tensors of every part (each must be written by exactly one rank)
     * and writes {@code metadata.txt}, synced, into the temporary directory. Returns its size.
     */
    private long writeMetadata(final long step, final Path tmp) {
        try {
            faults.at(SaveStage.BEFORE_METADATA, step, tmp);
            final Map<String, Integer> tensors = new java.util.TreeMap<>();
            for (int rank = 0; rank < shard.worldSize(); rank++) {
                try (CheckpointReader part = CheckpointReader.open(tmp.resolve(CheckpointFormat.shardName(rank)))) {
                    for (final CheckpointFile file : CheckpointFile.values()) {
                        for (final TensorSpec t : part.tensors(file)) {
                            final Integer other = tensors.put(file.fileName() + " " + t.name(), rank);
                            if (other != null) {
                                throw new IllegalStateException("tensor '" + t.name() + "' of " + file.fileName()
                                    + " was written by ranks " + other + " and " + rank + "; put every replicated "
                                    + "tensor in one rank's layout only");
                            }
                        }
                    }
                }
            }
            final ShardedMetadata metadata = new ShardedMetadata(CheckpointFormat.SHARDED_VERSION, step,
                shard.worldSize(), new java.util.TreeMap<>(shard.properties()), tensors);
            final byte[] text = metadata.toText().getBytes(java.nio.charset.StandardCharsets.UTF_8);
            final Path file = tmp.resolve(CheckpointFormat.SHARDED_METADATA);
            Files.write(file, text);
            DurableFiles.fsyncFile(file);
            DurableFiles.fsyncDirectory(tmp);
            return text.length;
        } catch (final IOException | RuntimeException e) {
            deleteQuietly(tmp);
            throw new CheckpointException(config.directory(), null, null, "the save of step " + step + " failed while "
                + "writing " + CheckpointFormat.SHARDED_METADATA + ": " + e, "the previous checkpoint is intact", e);
        }
    }

    /** Root attributes of one file for a save. */
    private Map<String, Object> rootAttributes(final CheckpointFile file, final long step, final String createdUtc) {
        final Map<String, Object> attrs = new LinkedHashMap<>();
        attrs.put(CheckpointFormat.ATTR_FORMAT, CheckpointFormat.MAGIC);
        attrs.put(CheckpointFormat.ATTR_VERSION, CheckpointFormat.VERSION);
        attrs.put(CheckpointFormat.ATTR_KIND, file.kind());
        attrs.put(CheckpointFormat.ATTR_STEP, step);
        attrs.put(CheckpointFormat.ATTR_CONFIG, metadata.config());
        attrs.put(CheckpointFormat.ATTR_PROJECT_VERSION, metadata.projectVersion());
        attrs.put(CheckpointFormat.ATTR_GIT_COMMIT, metadata.gitCommit());
        attrs.put(CheckpointFormat.ATTR_JAVA_VERSION, metadata.javaVersion());
        attrs.put(CheckpointFormat.ATTR_CREATED_UTC, createdUtc);
        attrs.put(CheckpointFormat.ATTR_WORLD_SIZE, (long) metadata.worldSize());
        attrs.putAll(new java.util.TreeMap<>(metadata.extra()));
        attrs.putAll(saveAttributes);
        return attrs;
    }

    /**
     * Checksums and writes the staged data into this rank's part and syncs it: for one process the temporary directory
     * {@code step-N.tmp-<pid>} itself, for a sharded job its {@code rank-NNNNN/} inside the shared one.
     */
    private Part writePart(final long step) {
        final Path directory = config.directory();
        final Path tmp = directory.resolve(CheckpointFormat.temporaryName(step, ownerPid));
        final Path partDir = shard == null ? tmp : tmp.resolve(CheckpointFormat.shardName(shard.rank()));
        String stage = "computing checksums";
        try {
            final long t0 = System.nanoTime();
            for (int i = 0; i < crc32.length; i++) {
                crc32[i] = staging.crc32(i, crc, scratch);
            }
            final long t1 = System.nanoTime();

            stage = "writing " + partDir;
            DurableFiles.deleteRecursively(partDir);
            Files.createDirectories(partDir);
            final Map<String, Long> sizes = new LinkedHashMap<>();
            final List<Path> written = new ArrayList<>();
            // one instant per save: model.h5 and state.h5 carry the same created_utc, as their other root attributes
            final String createdUtc = DateTimeFormatter.ISO_INSTANT.format(clock.instant());
            for (final CheckpointFile file : CheckpointFile.values()) {
                final Path path = partDir.resolve(file.fileName());
                JhdfFileWriter.write(path, file, staging, crc32, rootAttributes(file, step, createdUtc), coalesceBuffer);
                sizes.put(file.fileName(), Files.size(path));
                written.add(path);
                faults.at(SaveStage.FILE_WRITTEN, step, path);
            }
            final Manifest manifest = new Manifest(CheckpointFormat.VERSION, step, sizes);
            final long manifestBytes = manifest.write(partDir);
            final Path manifestPath = partDir.resolve(CheckpointFormat.MANIFEST);
            written.add(manifestPath);
            faults.at(SaveStage.FILE_WRITTEN, step, manifestPath);
            final long t2 = System.nanoTime();

            stage = "syncing " + partDir;
            faults.at(SaveStage.BEFORE_FSYNC, step, partDir);
            for (final Path path : written) {
                DurableFiles.fsyncFile(path);
            }
            DurableFiles.fsyncDirectory(partDir);
            if (partDir != tmp) {
                DurableFiles.fsyncDirectory(tmp);
            }
            final long t3 = System.nanoTime();
            final long bytes = sizes.values().stream().mapToLong(Long::longValue).sum() + manifestBytes;
            return new Part(tmp, bytes, t1 - t0, t2 - t1, t3 - t2, null);
        } catch (final IOException | RuntimeException e) {
            deleteQuietly(partDir);
            throw new CheckpointException(directory, null, null,
                "the save of step " + step + " failed while " + stage + ": " + e,
                "the previous checkpoint is intact; check free disk space and permissions", e);
        }
    }

    /**
     * Renames the complete temporary directory to {@code step-N} (the commit), then updates {@code latest} and applies
     * retention: one process, or rank 0 of a sharded job once the metadata is written.
     */
    private SaveResult commitDirectory(final long step, final Part part, final long metadataBytes) {
        final Path directory = config.directory();
        final Path tmp = part.tmp();
        String stage = "renaming " + tmp + " into place";
        boolean committed = false;
        Path target = null;
        Path replaced = null;
        try {
            final long t3 = System.nanoTime();
            faults.at(SaveStage.BEFORE_RENAME, step, tmp);
            target = store.directoryOf(step);
            if (Files.exists(target)) {
                // A second save of the same step (a resumed run passing it again) replaces the first. A directory
                // cannot be renamed over a non-empty one, so the old one is moved aside first; until the new one is in
                // place the moved copy is step N's checkpoint (resolution reads it, the next writer moves it back).
                replaced = directory.resolve(CheckpointFormat.replacedName(step, ownerPid));
                DurableFiles.deleteRecursively(replaced);
                Files.move(target, replaced, StandardCopyOption.ATOMIC_MOVE);
                faults.at(SaveStage.REPLACING, step, replaced);
            }
            Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE);
            DurableFiles.fsyncDirectory(directory);
            committed = true;
            store.markVerified(target);
            if (replaced != null) {
                DurableFiles.deleteRecursively(replaced);
            }

            stage = "updating " + CheckpointFormat.LATEST;
            faults.at(SaveStage.BEFORE_LATEST, step, target);
            store.writeLatest(step, ownerPid);

            stage = "removing checkpoints beyond keep-last " + config.keepLast();
            faults.at(SaveStage.BEFORE_RETENTION, step, directory);
            final List<Path> removed = store.applyRetention(step, config.keepLast(), ownerPid);
            final long t4 = System.nanoTime();
            return new SaveResult(step, target, part.bytes() + metadataBytes, part.checksumNs(), part.writeNs(),
                part.syncNs(), t4 - t3, removed);
        } catch (final IOException | RuntimeException e) {
            if (!committed) {
                deleteQuietly(tmp);
                putBackQuietly(replaced, target);
            }
            throw new CheckpointException(directory, null, null,
                "the save of step " + step + " failed while " + stage + ": " + e,
                committed ? "the checkpoint itself is committed and complete; the next save retries the rest"
                    : "the previous checkpoint is intact; check free disk space and permissions", e);
        }
    }

    /** After a failed replacement, moves the old checkpoint back to its name (else the next writer does). */
    private static void putBackQuietly(final Path replaced, final Path target) {
        if (replaced == null || Files.exists(target) || !Files.isDirectory(replaced)) {
            return;
        }
        try {
            Files.move(replaced, target, StandardCopyOption.ATOMIC_MOVE);
            DurableFiles.fsyncDirectory(target.getParent());
        } catch (final IOException ignored) {
            // The moved copy is still found by resolution and moved back by the next writer.
        }
    }

    private static void deleteQuietly(final Path path) {
        try {
            DurableFiles.deleteRecursively(path);
        } catch (final IOException ignored) {
            // Best effort: the next writer removes leftovers of dead processes.
        }
    }

    /**
     * The data of one save: put every tensor of the layout, then {@link CheckpointWriter#commit}. Each put copies the
     * caller's elements into the writer's staging buffers at once, so the caller may change its arrays right after.
     */
    public final class Snapshot {
        private final long step;

        private Snapshot(final long step) {
            this.step = step;
        }

        /** The step being saved. */
        public long step() {
            return step;
        }

        /**
         * Whether the writer's layout has this tensor: a rank of a sharded job puts only the tensors of its own
         * layout.
         */
        public boolean holds(final CheckpointFile file, final String name) {
            return layout.indexOf(file, name) >= 0;
        }

        /** Copies a float32 tensor from {@code src[offset, offset + elements)} (row-major). */
        public Snapshot float32(final CheckpointFile file, final String name, final float[] src, final int offset) {
            return copy(file, name, DType.FLOAT32, src, src.length, offset);
        }

        /** Copies a float64 tensor from {@code src[offset, offset + elements)} (row-major). */
        public Snapshot float64(final CheckpointFile file, final String name, final double[] src, final int offset) {
            return copy(file, name, DType.FLOAT64, src, src.length, offset);
        }

        /** Copies an int64 tensor from {@code src[offset, offset + elements)} (row-major). */
        public Snapshot int64(final CheckpointFile file, final String name, final long[] src, final int offset) {
            return copy(file, name, DType.INT64, src, src.length, offset);
        }

        /** Copies an int32 tensor from {@code src[offset, offset + elements)} (row-major). */
        public Snapshot int32(final CheckpointFile file, final String name, final int[] src, final int offset) {
            return copy(file, name, DType.INT32, src, src.length, offset);
        }

        /** Sets a float32 scalar (or one-element tensor). */
        public Snapshot float32(final CheckpointFile file, final String name, final float value) {
            ((float[]) scalar(file, name, DType.FLOAT32))[0] = value;
            return this;
        }

        /** Sets a float64 scalar (or one-element tensor). */
        public Snapshot float64(final CheckpointFile file, final String name, final double value) {
            ((double[]) scalar(file, name, DType.FLOAT64))[0] = value;
            return this;
        }

        /** Sets an int64 scalar (or one-element tensor). */
        public Snapshot int64(final CheckpointFile file, final String name, final long value) {
            ((long[]) scalar(file, name, DType.INT64))[0] = value;
            return this;
        }

        /** Sets an int32 scalar (or one-element tensor). */
        public Snapshot int32(final CheckpointFile file, final String name, final int value) {
            ((int[]) scalar(file, name, DType.INT32))[0] = value;
            return this;
        }

        /**
         * Adds a string attribute to this save, on the root of both files (for example the curriculum stage's name).
         * Names must differ from the standard attributes and the run's extra ones; values hold at most
         * {@link RunMetadata#MAX_ATTRIBUTE_BYTES} bytes of UTF-8.
         */
        public Snapshot attribute(final String name, final String value) {
            checkCurrent();
            if (name == null || name.isEmpty() || CheckpointFormat.STANDARD_ATTRIBUTES.contains(name)
                || metadata.extra().containsKey(name)) {
                throw new IllegalArgumentException("attribute name=" + name + " is empty or clashes with a standard "
                    + "or run attribute; standard ones are " + CheckpointFormat.STANDARD_ATTRIBUTES);
            }
            RunMetadata.requireFits("attribute '" + name + "'", value);
            saveAttributes.put(name, value);
            return this;
        }

        private void checkCurrent() {
            if (current != this) {
                throw new IllegalStateException("this snapshot of step " + step + " was committed or replaced by a "
                    + "later begin(); call begin() again");
            }
        }

        private Snapshot copy(final CheckpointFile file, final String name, final DType dtype, final Object src,
            final int srcLength, final int offset) {
            final int index = index(file, name, dtype);
            final int elements = layout.tensors().get(index).elements();
            if (offset < 0 || (long) offset + elements > srcLength) {
                throw new IllegalArgumentException("tensor '" + name + "' needs " + elements + " elements from src["
                    + offset + " ..] but src has length " + srcLength);
            }
            staging.copyIn(index, src, offset);
            return this;
        }

        /** The one-element row of a scalar tensor, marked as put. */
        private Object scalar(final CheckpointFile file, final String name, final DType dtype) {
            final int index = index(file, name, dtype);
            final TensorSpec t = layout.tensors().get(index);
            if (t.elements() != 1) {
                throw new IllegalArgumentException("tensor '" + name + "' is " + t.dtype() + t.shapeText()
                    + ", not a single value; put it from an array");
            }
            staging.filled[index] = true;
            return staging.rows[index][0];
        }

        private int index(final CheckpointFile file, final String name, final DType dtype) {
            checkCurrent();
            final int index = layout.indexOf(file, name);
            if (index < 0) {
                throw new IllegalArgumentException("tensor '" + name + "' is not in " + file.fileName()
                    + " of the checkpoint layout; declare it in the CheckpointLayout");
            }
            final TensorSpec t = layout.tensors().get(index);
            if (t.dtype() != dtype) {
                throw new IllegalArgumentException("tensor '" + name + "' is declared " + t.dtype() + t.shapeText()
                    + " but was put as " + dtype);
            }
            return index;
        }
    }
}
