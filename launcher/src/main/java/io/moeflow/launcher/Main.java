package io.moeflow.launcher;

import java.io.File;
import java.util.concurrent.Callable;

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
    subcommands = {BenchCommand.class, CommandLine.HelpCommand.class})
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
        return cli.execute(args);
    }

    /** Pre-scans the arguments for {@code --config FILE} or {@code --config=FILE}. */
    static File configFile(final String[] args) {
        for (int i = 0; i < args.length; i++) {
            if (args[i].equals("--config") && i + 1 < args.length) {
                return new File(args[i + 1]);
            }
            if (args[i].startsWith("--config=")) {
                return new File(args[i].substring("--config=".length()));
            }
        }
        return null;
    }

    /** Reports the project version from the jar manifest. */
    static final class Version implements CommandLine.IVersionProvider {
        @Override
        public String[] getVersion() {
            final String v = Main.class.getPackage().getImplementationVersion();
            return new String[] {"moeflow " + (v == null ? "(development build)" : v),
                "Java " + System.getProperty("java.version") + " on " + System.getProperty("os.name") + " "
                    + System.getProperty("os.arch") + ", " + Runtime.getRuntime().availableProcessors() + " cores"};
        }
    }

}
