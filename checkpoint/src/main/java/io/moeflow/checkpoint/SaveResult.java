package io.moeflow.checkpoint;

import java.nio.file.Path;
import java.util.List;

/**
 * A completed save.
 *
 * @param step       the step saved
 * @param directory  the committed checkpoint directory
 * @param bytes      total size of the files written
 * @param checksumNs time computing dataset checksums
 * @param writeNs    time writing the HDF5 files and the manifest
 * @param syncNs     time in fsync of the files and the directory
 * @param commitNs   time renaming into place, updating {@code latest} and removing old checkpoints
 * @param removed    the old checkpoint directories removed by retention
 */
public record SaveResult(long step, Path directory, long bytes, long checksumNs, long writeNs, long syncNs,
    long commitNs, List<Path> removed) {
    /** Copies the list. */
    public SaveResult {
        removed = List.copyOf(removed);
    }

    /** Time from the start of checksumming to the end of retention. */
    public long totalNs() {
        return checksumNs + writeNs + syncNs + commitNs;
    }
}
