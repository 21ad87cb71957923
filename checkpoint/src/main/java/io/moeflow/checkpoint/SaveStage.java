package io.moeflow.checkpoint;

/**
 * The points of a save at which a {@link FaultInjector} is called, in the order they happen. A crash at any of them
 * (or between them) leaves the previous checkpoint loadable.
 */
public enum SaveStage {
    /** One file of the temporary directory has been written and closed, not synced ({@code path}: the file). */
    FILE_WRITTEN,
    /** All files are written; next they and the temporary directory are fsynced ({@code path}: the directory). */
    BEFORE_FSYNC,
    /**
     * Sharded saves only, on rank 0: every rank has written and synced its part; next rank 0 writes the global
     * {@code metadata.txt} ({@code path}: the temporary directory).
     */
    BEFORE_METADATA,
    /** Everything is durable; next the temporary directory is renamed to {@code step-N} ({@code path}: the temp dir). */
    BEFORE_RENAME,
    /**
     * Only when the step was committed before (a resumed run saving it again): the old {@code step-N} has been moved
     * aside to {@code step-N.replaced-<pid>}; next the new one is renamed into place ({@code path}: the moved copy).
     */
    REPLACING,
    /** The checkpoint is committed; next the {@code latest} pointer is replaced ({@code path}: the committed dir). */
    BEFORE_LATEST,
    /** {@code latest} points at the new checkpoint; next old checkpoints beyond keep-last are removed. */
    BEFORE_RETENTION
}
