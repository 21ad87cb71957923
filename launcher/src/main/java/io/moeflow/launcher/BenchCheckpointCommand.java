package io.moeflow.launcher;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;

import io.moeflow.checkpoint.CheckpointBenchmark;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code moeflow bench checkpoint}: checkpoint write throughput next to a plain sequential write of the same bytes. */
@Command(name = "checkpoint", mixinStandardHelpOptions = true, sortOptions = false,
    description = {"Write checkpoints of the bench model (2.3 M parameters) and of a large one (98 M) and, on the same "
        + "disk in the same run, the same number of bytes with a plain sequential write + fsync; prints MB/s of both "
        + "and their ratio."})
public final class BenchCheckpointCommand implements Callable<Integer> {
    @Option(names = "--dir", paramLabel = "DIR", defaultValue = "runs/bench-checkpoint",
        description = "Directory on the disk to measure; removed afterwards. Default: ${DEFAULT-VALUE}")
    Path dir;

    @Option(names = "--repeats", paramLabel = "N", defaultValue = "5",
        description = "Saves per model; the median is reported. Default: ${DEFAULT-VALUE}")
    int repeats;

    @Option(names = "--model", paramLabel = "WHICH", defaultValue = "all",
        description = "bench, large or all. Default: ${DEFAULT-VALUE}")
    String model;

    @Override
    public Integer call() {
        if (repeats < 1) {
            throw new IllegalArgumentException("--repeats=" + repeats + " must be >= 1");
        }
        try {
            Files.createDirectories(dir);
        } catch (final IOException e) {
            throw new UncheckedIOException("cannot create " + dir + ": " + e.getMessage(), e);
        }
        final CheckpointBenchmark bench = new CheckpointBenchmark(dir);
        switch (model) {
            case "all" -> bench.runAll(repeats).forEach(System.out::println);
            case "bench" -> System.out.println(bench.run(CheckpointBenchmark.ModelShape.BENCH, repeats));
            case "large" -> System.out.println(bench.run(CheckpointBenchmark.ModelShape.LARGE, repeats));
            default -> throw new IllegalArgumentException("--model=" + model + ": choose bench, large or all");
        }
        return 0;
    }
}
