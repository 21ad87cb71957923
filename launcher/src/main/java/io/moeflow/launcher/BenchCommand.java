package io.moeflow.launcher;

import java.util.concurrent.Callable;

import picocli.CommandLine;
import picocli.CommandLine.Command;

/** {@code moeflow bench}: the benchmarks; each subcommand prints its figures next to a baseline measured in the same run. */
@Command(
    name = "bench",
    mixinStandardHelpOptions = true,
    description = "Run a benchmark (figures are printed next to a baseline measured in the same run).",
    subcommands = {BenchTrainCommand.class, BenchCheckpointCommand.class, BenchTransportCommand.class, BenchScalingCommand.class})
public final class BenchCommand implements Callable<Integer> {
    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() {
        spec.commandLine().usage(System.out);
        return 0;
    }
}
