package io.moeflow.checkpoint;

import java.io.IOException;
import java.nio.file.Path;

/**
 * Called by the writer at every {@link SaveStage} of a save, so tests can fail or stop a save at a chosen point. An
 * exception thrown here aborts the save exactly like a real I/O error at that point would. It runs on the thread that
 * writes: the background thread when saves are asynchronous.
 */
@FunctionalInterface
public interface FaultInjector {
    /** The default: does nothing. */
    FaultInjector NONE = (stage, step, path) -> {
    };

    /**
     * @param stage the point the save has reached
     * @param step  the step being saved
     * @param path  the file or directory the stage is about (see {@link SaveStage})
     * @throws IOException to simulate an I/O failure at this point
     */
    void at(SaveStage stage, long step, Path path) throws IOException;
}
