package io.moeflow.launcher;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;
import java.util.concurrent.Callable;

import io.moeflow.checkpoint.CheckpointFile;
import io.moeflow.checkpoint.CheckpointReader;
import io.moeflow.checkpoint.Resolution;
import io.moeflow.checkpoint.RunMetadata;
import io.moeflow.checkpoint.TensorStats;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** {@code moeflow inspect}: what a checkpoint holds. */
@Command(name = "inspect", mixinStandardHelpOptions = true, sortOptions = false,
    description = "Print a checkpoint's step, provenance, configuration, parameter count and every tensor's shape and "
        + "L2 norm; verifies every checksum.")
public final class InspectCommand implements Callable<Integer> {
    @Parameters(paramLabel = "CHECKPOINT", arity = "0..1",
        description = "A checkpoint (runs/<name>/checkpoints/step-N) or a run directory. Default: the newest under "
            + "--runs-dir")
    Path checkpoint;

    @Option(names = "--runs-dir", paramLabel = "DIR", defaultValue = TrainDefaults.RUNS_DIR,
        description = "Where to look for the latest run. Default: ${DEFAULT-VALUE}")
    Path runsDir;

    @Option(names = "--state", defaultValue = "false",
        description = "Also list state.h5 (optimizer moments, counters, curriculum state).")
    boolean state;

    @Override
    public Integer call() {
        final Resolution found = SavedRun.find(checkpoint, runsDir);
        try (CheckpointReader reader = CheckpointReader.open(found.directory())) {
            final RunMetadata meta = reader.metadata();
            System.out.println("checkpoint: " + SavedRun.describe(found));
            System.out.println("step:       " + reader.step());
            System.out.println("format:     version " + reader.formatVersion() + ", every checksum verified");
            System.out.println("written:    " + reader.createdUtc() + " by moeflow " + meta.projectVersion() + " (commit "
                + meta.gitCommit() + ", Java " + meta.javaVersion() + ", world size " + meta.worldSize() + ")");
            reader.shardedMetadata().ifPresent(m -> System.out.println("sharded:    " + m.worldSize() + " rank parts"
                + m.properties().entrySet().stream().map(e -> ", " + e.getKey() + " " + e.getValue())
                    .collect(java.util.stream.Collectors.joining())));
            System.out.printf("parameters: %,d%n", reader.parameterCount());
            for (final Map.Entry<String, String> e : meta.extra().entrySet()) {
                System.out.println(e.getKey() + ": " + e.getValue());
            }
            System.out.println("config:");
            reader.config().lines().filter(l -> !l.startsWith("#")).forEach(l -> System.out.println("  " + l));
            print(reader, CheckpointFile.MODEL);
            if (state) {
                print(reader, CheckpointFile.STATE);
            }
        }
        return 0;
    }

    private static void print(final CheckpointReader reader, final CheckpointFile file) {
        System.out.println();
        System.out.printf("%-52s %-8s %-14s %12s%n", file.fileName(), "dtype", "shape", "L2 norm");
        for (final TensorStats t : reader.stats(file)) {
            System.out.printf("%-52s %-8s %-14s %12.5g%n", t.tensor().name(), t.tensor().dtype().name().toLowerCase(),
                Arrays.toString(t.tensor().shape()), t.l2Norm());
        }
    }
}
