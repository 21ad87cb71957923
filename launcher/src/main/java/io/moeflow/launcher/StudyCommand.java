package io.moeflow.launcher;

import java.util.concurrent.Callable;

import picocli.CommandLine;
import picocli.CommandLine.Command;

/** {@code moeflow study}: experiments that compare training settings over several seeds. */
@Command(name = "study", mixinStandardHelpOptions = true,
    description = "Run a study: the same model trained under several settings, several seeds each.",
    subcommands = {StudyCurriculumCommand.class})
public final class StudyCommand implements Callable<Integer> {
    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() {
        spec.commandLine().usage(System.out);
        return 0;
    }
}
