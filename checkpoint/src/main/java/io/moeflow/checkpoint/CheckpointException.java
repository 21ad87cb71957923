package io.moeflow.checkpoint;

import java.nio.file.Path;

/**
 * A checkpoint could not be written, found, or trusted. The message names the directory, the file and the dataset
 * when they are known, and says what to do. Unchecked: the caller usually cannot recover beyond reporting it or
 * choosing another checkpoint.
 */
public final class CheckpointException extends RuntimeException {
    private final Path directory;
    private final String file;
    private final String dataset;
    private final boolean dataDamaged;

    /**
     * @param directory the checkpoint (or checkpoints) directory concerned, may be null
     * @param file      the file name inside it, may be null
     * @param dataset   the dataset path inside the file, may be null
     * @param problem   what went wrong
     * @param action    what the user should do
     * @param cause     the underlying exception, may be null
     */
    public CheckpointException(final Path directory, final String file, final String dataset, final String problem,
        final String action, final Throwable cause) {
        this(directory, file, dataset, problem, action, cause, false);
    }

    private CheckpointException(final Path directory, final String file, final String dataset, final String problem,
        final String action, final Throwable cause, final boolean dataDamaged) {
        super(message(directory, file, dataset, problem, action), cause);
        this.directory = directory;
        this.file = file;
        this.dataset = dataset;
        this.dataDamaged = dataDamaged;
    }

    /** A dataset's bytes could not be read or do not match their checksum: the checkpoint is damaged. */
    static CheckpointException damagedData(final Path directory, final String file, final String dataset,
        final String problem, final String action, final Throwable cause) {
        return new CheckpointException(directory, file, dataset, problem, action, cause, true);
    }

    /** Without a cause. */
    public CheckpointException(final Path directory, final String file, final String dataset, final String problem,
        final String action) {
        this(directory, file, dataset, problem, action, null);
    }

    /** The directory concerned, or null. */
    public Path directory() {
        return directory;
    }

    /** The file name concerned, or null. */
    public String file() {
        return file;
    }

    /**
     * Whether a tensor's data turned out damaged while it was read (checksum mismatch, truncated or unreadable bytes),
     * as opposed to a checkpoint that does not fit the caller (another model) or a structural problem found by
     * {@link CheckpointReader#open}. {@link CheckpointStore#loadAuto} falls back to an older checkpoint on this.
     */
    public boolean dataDamaged() {
        return dataDamaged;
    }

    /** The dataset concerned, or null. */
    public String dataset() {
        return dataset;
    }

    private static String message(final Path directory, final String file, final String dataset,
        final String problem, final String action) {
        final StringBuilder sb = new StringBuilder("checkpoint ");
        sb.append(directory == null ? "?" : directory.toString());
        if (file != null) {
            sb.append(", file ").append(file);
        }
        if (dataset != null) {
            sb.append(", dataset '").append(dataset).append('\'');
        }
        sb.append(": ").append(problem);
        if (action != null && !action.isEmpty()) {
            sb.append(". ").append(action);
        }
        return sb.toString();
    }
}
