package io.moeflow.launcher;

import java.nio.file.Path;

import io.moeflow.checkpoint.Resolution;
import picocli.CommandLine.Option;

/** Which checkpoint a command reads (a picocli mixin for eval and generate). */
public final class CheckpointChoice {
    @Option(names = "--checkpoint", paramLabel = "DIR",
        description = "A checkpoint (runs/<name>/checkpoints/step-N) or a run directory. Default: newest under --runs-dir")
    Path checkpoint;

    @Option(names = "--runs-dir", paramLabel = "DIR", defaultValue = TrainDefaults.RUNS_DIR,
        description = "Where to look for the latest run. Default: ${DEFAULT-VALUE}")
    Path runsDir;

    /** The chosen checkpoint, validated. */
    Resolution find() {
        return SavedRun.find(checkpoint, runsDir);
    }
}
