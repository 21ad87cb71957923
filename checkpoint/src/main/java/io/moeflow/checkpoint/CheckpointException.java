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
        super(message(directory, file, dataset, problem, action), cause);
        this.directory = directory;
        this.file = file;
        this.dataset = dataset;
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
