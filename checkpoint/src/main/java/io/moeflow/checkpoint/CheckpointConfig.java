package io.moeflow.checkpoint;

import java.nio.file.Path;
import java.util.Objects;
import java.util.concurrent.TimeUnit;

/**
 * Where and how a run writes its checkpoints.
 *
 * @param directory     the run's checkpoint directory, e.g. {@code runs/<name>/checkpoints}; created when missing
 * @param keepLast      committed checkpoints to keep, newest first; older ones are deleted after a new one is
 *                      complete; 0 keeps every checkpoint
 * @param asyncSave     write in a background thread; the caller only waits for the copy into staging buffers
 * @param saveTimeoutNs the longest a caller waits for the save in flight (in {@code begin}, {@code awaitIdle},
 *                      {@code close}) before giving up with a {@link CheckpointException}
 */
public record CheckpointConfig(Path directory, int keepLast, boolean asyncSave, long saveTimeoutNs) {
    /**
     * Three: the newest plus two fallbacks, so {@code --resume auto} still finds a good one if the newest turns out
     * corrupt, at a disk cost of three checkpoints.
     */
    public static final int DEFAULT_KEEP_LAST = 3;

    /** On: a save costs the trainer one memory copy instead of a disk write plus fsync. */
    public static final boolean DEFAULT_ASYNC_SAVE = true;

    /**
     * Ten minutes: a 100 M-parameter checkpoint (1.2 GB with AdamW moments) takes seconds on a local disk, so this only
     * fires when the disk or file system hangs; it turns a silent hang into an error that says so.
     */
    public static final long DEFAULT_SAVE_TIMEOUT_NS = TimeUnit.MINUTES.toNanos(10);

    /** Validates with {@code name=value} messages. */
    public CheckpointConfig {
        Objects.requireNonNull(directory, "directory");
        if (keepLast < 0) {
            throw new IllegalArgumentException("keepLast=" + keepLast + " must be >= 0 (0 keeps every checkpoint)");
        }
        if (saveTimeoutNs <= 0) {
            throw new IllegalArgumentException("saveTimeoutNs=" + saveTimeoutNs + " must be > 0");
        }
    }

    /** The defaults for a directory: keep 3, asynchronous, 10 minute timeout. */
    public static CheckpointConfig defaults(final Path directory) {
        return new CheckpointConfig(directory, DEFAULT_KEEP_LAST, DEFAULT_ASYNC_SAVE, DEFAULT_SAVE_TIMEOUT_NS);
    }

    /** A copy with another {@code keepLast}. */
    public CheckpointConfig withKeepLast(final int keepLast) {
        return new CheckpointConfig(directory, keepLast, asyncSave, saveTimeoutNs);
    }

    /** A copy with {@code asyncSave} switched. */
    public CheckpointConfig withAsyncSave(final boolean asyncSave) {
        return new CheckpointConfig(directory, keepLast, asyncSave, saveTimeoutNs);
    }

    /** A copy with another timeout. */
    public CheckpointConfig withSaveTimeoutNs(final long saveTimeoutNs) {
        return new CheckpointConfig(directory, keepLast, asyncSave, saveTimeoutNs);
    }
}
