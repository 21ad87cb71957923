package io.moeflow.checkpoint;

/**
 * The two HDF5 files of a checkpoint directory. They are split so that a PyTorch user can load the weights with a
 * dictionary comprehension over {@code model.h5} without stepping over optimizer or RNG state.
 */
public enum CheckpointFile {
    /** {@code model.h5}: the model's parameters only, float32 datasets at the root, named like PyTorch. */
    MODEL("model.h5", "model"),
    /** {@code state.h5}: everything else needed to resume exactly (optimizer moments, counters, RNG, schedule). */
    STATE("state.h5", "state");

    private final String fileName;
    private final String kind;

    CheckpointFile(final String fileName, final String kind) {
        this.fileName = fileName;
        this.kind = kind;
    }

    /** The file name inside a checkpoint directory. */
    public String fileName() {
        return fileName;
    }

    /** The value of the file's {@code kind} attribute. */
    public String kind() {
        return kind;
    }
}
