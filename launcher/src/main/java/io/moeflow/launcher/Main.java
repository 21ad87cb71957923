package io.moeflow.launcher;

import java.io.File;
import java.io.UncheckedIOException;
import java.util.List;
import java.util.concurrent.Callable;

import io.moeflow.checkpoint.CheckpointException;
import io.moeflow.checkpoint.CheckpointStore;
import io.moeflow.checkpoint.RunMetadata;
import io.moeflow.curriculum.DataFormatException;
import io.moeflow.trainer.TrainingDivergedException;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/**
 * The {@code moeflow} command line. The only {@code main} in MoEFlow: every subcommand is a picocli
 * {@link Command}; options may also come from a properties file given with {@code --config FILE}.
 */
@Command(
    name = "moeflow",
    mixinStandardHelpOptions = true,
    versionProvider = Main.Version.class,
    description = "Train Mixture-of-Experts language models on the JVM.",
    subcommands = {TrainCommand.class, LaunchCommand.class, EvalCommand.class, GenerateCommand.class, InspectCommand.class,
        BenchCommand.class, StudyCommand.class, CommandLine.HelpCommand.class})
public final class Main implements Callable<Integer> {

    @Override
    public Integer call() {
        CommandLine.usage(this, System.out);
        return 0;
    }

    public static void main(final String[] args) {
        System.exit(run(args));
    }

    /** Runs the command line and returns the exit code (tests call this instead of {@link #main}). */
    public static int run(final String... args) {
        // before picocli, which loads the commands' option types and with them the Vector API kernels
        final List<String> missing = JvmFlags.missingRequired();
        if (!missing.isEmpty()) {
            System.err.println("moeflow: this JVM was started without " + String.join(" and ", missing) + "; run ./moeflow, "
                + "which passes them, or add them to the java command line (with " + JvmFlags.TRAP_LIMIT + ")");
            return 2;
        }
        final CommandLine cli = new CommandLine(new Main());
        final File config = configFile(args);
        if (config != null) {
            if (!config.isFile()) {
                System.err.println("moeflow: --config " + config + ": no such file; give the path of a .properties file");
                return 2;
            }
            // Keys are option names without dashes (steps=200), or command-qualified (moeflow.train.steps=200).
            cli.setDefaultValueProvider(new CommandLine.PropertiesDefaultProvider(config));
        }
        cli.setExecutionExceptionHandler(Main::report);
        // launch ... train --steps 10: everything after "train" belongs to the workers' train command
        cli.getSubcommands().get("launch").setStopAtPositional(true);
        // A repeated option takes its last value, as in most command lines (handy with shell aliases and scripts).
        cli.setOverwrittenOptionsAllowed(true);
        cli.setCaseInsensitiveEnumValuesAllowed(true); // --curriculum fixed_root as well as FIXED_ROOT
        cli.setExecutionStrategy(Main::executeWithJvmCheck);
        return cli.execute(args);
    }

    /** Runs the command, warning first when the JVM lacks the JIT flag the kernels' speed relies on. */
    private static int executeWithJvmCheck(final CommandLine.ParseResult parsed) {
        final boolean helpOnly = parsed.asCommandLineList().stream().anyMatch(c -> c.isUsageHelpRequested() || c.isVersionHelpRequested())
            || !parsed.hasSubcommand() || parsed.subcommand().commandSpec().userObject() instanceof CommandLine.HelpCommand;
        if (!helpOnly && JvmFlags.trapLimitTooLow()) {
            System.err.println("moeflow: warning: without " + JvmFlags.TRAP_LIMIT + " the JIT may keep the kernels' vectors boxed"
                + " and train about 20% slower (docs/model.md, \"C2 caveat\"); ./moeflow passes it");
        }
        return new CommandLine.RunLast().execute(parsed);
    }

    /**
     * Bad input (a config value, a data file, a checkpoint) is one clear line and exit code 2; anything
     * else is a bug or an environment failure and keeps its stack trace (exit code 1).
     */
    static int report(final Exception e, final CommandLine cli, final CommandLine.ParseResult parsed) {
        final String command = "moeflow " + cli.getCommandName();
        if (e instanceof IllegalArgumentException || e instanceof UncheckedIOException || e instanceof DataFormatException
            || e instanceof TrainingDivergedException || e instanceof CheckpointException) {
            System.err.println(command + ": " + e.getMessage());
            return 2;
        }
        System.err.println(command + ": unexpected error, please report it with this trace:");
        e.printStackTrace();
        return 1;
    }

    /**
     * Pre-scans the arguments for {@code --config FILE}. Without one, {@code train --resume} takes the
     * resumed run's saved {@code config.properties}, so a resumed run continues with the same options.
     */
    static File configFile(final String[] args) {
        final String config = value(args, "--config");
        if (config != null) {
            return new File(config);
        }
        final String resume = value(args, "--resume");
        if (resume == null || args.length == 0 || !args[0].equals("train")) {
            return null;
        }
        final File runDir;
        if (resume.equals(CheckpointStore.AUTO)) {
            final String runName = value(args, "--run-name");
            final String runsDir = value(args, "--runs-dir");
            if (runName == null) {
                return null; // the train command reports the missing --run-name
            }
            runDir = new File(runsDir == null ? TrainDefaults.RUNS_DIR : runsDir, runName);
        } else {
            final File checkpoints = new File(resume).getAbsoluteFile().getParentFile();
            runDir = checkpoints == null ? null : checkpoints.getParentFile();
        }
        final File saved = runDir == null ? null : new File(runDir, "config.properties");
        return saved != null && saved.isFile() ? saved : null;
    }

    /** The value of {@code --name VALUE} or {@code --name=VALUE}, or null. */
    private static String value(final String[] args, final String name) {
        for (int i = 0; i < args.length; i++) {
            if (args[i].equals(name) && i + 1 < args.length) {
                return args[i + 1];
            }
            if (args[i].startsWith(name + "=")) {
                return args[i].substring(name.length() + 1);
            }
        }
        return null;
    }

    /** The MoEFlow version from the jar manifest, or "development" when run from classes. */
    static String projectVersion() {
        final String v = Main.class.getPackage().getImplementationVersion();
        return v == null ? "development" : v;
    }

    /** The source commit the moeflow script passes in (-Dmoeflow.git.commit), or "unknown". */
    static String gitCommit() {
        final String commit = System.getProperty("moeflow.git.commit");
        return commit == null || commit.isBlank() ? RunMetadata.UNKNOWN : commit;
    }

    /** Reports the project version from the jar manifest. */
    static final class Version implements CommandLine.IVersionProvider {
        @Override
        public String[] getVersion() {
            return new String[] {"moeflow " + projectVersion() + " (commit " + gitCommit() + ")",
                "Java " + System.getProperty("java.version") + " on " + System.getProperty("os.name") + " "
                    + System.getProperty("os.arch") + ", " + Runtime.getRuntime().availableProcessors() + " cores"};
        }
    }

}
