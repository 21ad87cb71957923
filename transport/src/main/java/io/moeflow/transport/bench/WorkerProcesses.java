package io.moeflow.transport.bench;

import java.io.BufferedReader;
import java.io.File;
import java.io.InputStreamReader;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;

/**
 * Worker JVMs of one job, started together and never orphaned: {@link #close()}, a failed or
 * timed-out {@link #awaitAll}, and JVM exit (a shutdown hook) all destroy every worker and its
 * descendants. Each worker's output goes to a log file; rank 0's can also be forwarded.
 */
public final class WorkerProcesses implements AutoCloseable {
    private final List<Process> processes = new ArrayList<>();
    private final List<Path> logs = new ArrayList<>();
    private final Thread shutdownHook = new Thread(this::destroyAll, "moeflow-worker-reaper");
    private boolean closed;
    private Thread forwarder;

    private WorkerProcesses() {
        Runtime.getRuntime().addShutdownHook(shutdownHook);
    }

    /**
     * Starts one JVM per command. Output of worker {@code i} goes to {@code logDir/worker-i.log},
     * except worker 0's standard output when {@code firstWorkerLines} is given: its lines go there
     * as they come (its standard error still goes to the log).
     */
    public static WorkerProcesses start(final List<List<String>> commands, final Path logDir,
                                        final Consumer<String> firstWorkerLines) {
        final WorkerProcesses workers = new WorkerProcesses();
        try {
            Files.createDirectories(logDir);
            for (int i = 0; i < commands.size(); i++) {
                final ProcessBuilder builder = new ProcessBuilder(commands.get(i));
                final Path log = logDir.resolve("worker-" + i + ".log");
                if (i == 0 && firstWorkerLines != null) {
                    builder.redirectError(log.toFile());
                } else {
                    builder.redirectErrorStream(true).redirectOutput(log.toFile());
                }
                workers.logs.add(log);
                final Process process = builder.start();
                workers.processes.add(process);
                if (i == 0 && firstWorkerLines != null) {
                    workers.forwarder = new Thread(() -> forward(process, firstWorkerLines), "moeflow-worker-output");
                    workers.forwarder.setDaemon(true);
                    workers.forwarder.start();
                }
            }
            return workers;
        } catch (final IOException e) {
            workers.close();
            throw new UncheckedIOException("could not start worker JVM: " + e.getMessage(), e);
        }
    }

    private static void forward(final Process process, final Consumer<String> sink) {
        try (BufferedReader reader = new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8))) {
            String line;
            while ((line = reader.readLine()) != null) {
                sink.accept(line);
            }
        } catch (final IOException e) {
            // the worker died; its exit code tells the story
        }
    }

    /**
     * A command that runs {@code mainClass} in a fresh JVM with this JVM's executable, class path and
     * the given flags.
     */
    public static List<String> javaCommand(final List<String> jvmFlags, final String mainClass, final List<String> args) {
        final List<String> command = new ArrayList<>();
        command.add(Paths.get(System.getProperty("java.home"), "bin", "java").toString());
        command.addAll(jvmFlags);
        command.add("-cp");
        command.add(System.getProperty("java.class.path"));
        command.add(mainClass);
        command.addAll(args);
        return command;
    }

    /**
     * The flags worker JVMs need: the system property {@code moeflow.jvm.flags} when set (tests),
     * else this JVM's own flags (the launcher's {@code --add-opens} and friends).
     */
    public static List<String> inheritedJvmFlags() {
        final String flags = System.getProperty("moeflow.jvm.flags");
        if (flags != null && !flags.isBlank()) {
            return Arrays.asList(flags.trim().split("\\s+"));
        }
        final List<String> own = new ArrayList<>();
        for (final String arg : ManagementFactory.getRuntimeMXBean().getInputArguments()) {
            if (!arg.startsWith("-agentlib") && !arg.startsWith("-javaagent") && !arg.startsWith("-Xrunjdwp")) {
                own.add(arg);
            }
        }
        return own;
    }

    /**
     * For a worker JVM: exits with code 5 soon after its parent process is gone, so that a coordinator
     * killed with SIGKILL (no shutdown hooks) does not leave its workers running.
     */
    public static void exitWhenParentDies() {
        final ProcessHandle parent = ProcessHandle.current().parent().orElse(null);
        if (parent == null) {
            return;
        }
        final Thread watchdog = new Thread(() -> {
            while (parent.isAlive()) {
                try {
                    Thread.sleep(500);
                } catch (final InterruptedException e) {
                    return;
                }
            }
            System.err.println("moeflow worker: parent process " + parent.pid() + " is gone; exiting");
            Runtime.getRuntime().halt(5);
        }, "moeflow-parent-watchdog");
        watchdog.setDaemon(true);
        watchdog.start();
    }

    /** Number of workers. */
    public int size() {
        return processes.size();
    }

    /** The process of worker {@code i} (tests kill one to see what its peers do). */
    public Process process(final int i) {
        return processes.get(i);
    }

    /** The log file of worker {@code i}. */
    public Path log(final int i) {
        return logs.get(i);
    }

    /**
     * Waits until every worker exited, at most {@code timeoutNs}; on a timeout destroys them all.
     *
     * @return exit codes by worker; -1 for a worker destroyed after the timeout
     */
    public int[] awaitAll(final long timeoutNs) {
        final long deadline = System.nanoTime() + timeoutNs;
        final int[] codes = new int[processes.size()];
        for (int i = 0; i < processes.size(); i++) {
            final Process p = processes.get(i);
            try {
                final long remainingNs = deadline - System.nanoTime();
                codes[i] = p.waitFor(Math.max(0, remainingNs), TimeUnit.NANOSECONDS) ? p.exitValue() : -1;
                if (i == 0 && forwarder != null && codes[0] != -1) {
                    forwarder.join(TimeUnit.NANOSECONDS.toMillis(Math.max(1, deadline - System.nanoTime())));
                }
            } catch (final InterruptedException e) {
                Thread.currentThread().interrupt();
                codes[i] = -1;
            }
        }
        if (Arrays.stream(codes).anyMatch(c -> c == -1)) {
            destroyAll();
        }
        return codes;
    }

    /** The last {@code lines} lines of worker {@code i}'s log (for error messages). */
    public String tail(final int i, final int lines) {
        final File file = logs.get(i).toFile();
        if (!file.isFile()) {
            return "(no log: its output went to the console)";
        }
        try {
            final List<String> all = Files.readAllLines(file.toPath(), StandardCharsets.UTF_8);
            return String.join(System.lineSeparator(), all.subList(Math.max(0, all.size() - lines), all.size()));
        } catch (final IOException e) {
            return "(log unreadable: " + e.getMessage() + ")";
        }
    }

    private void destroyAll() {
        for (final Process p : processes) {
            p.descendants().forEach(ProcessHandle::destroyForcibly);
            p.destroyForcibly();
        }
        for (final Process p : processes) {
            try {
                p.waitFor(5, TimeUnit.SECONDS);
            } catch (final InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            }
        }
    }

    /** Destroys every worker still running and removes the shutdown hook. */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        destroyAll();
        try {
            Runtime.getRuntime().removeShutdownHook(shutdownHook);
        } catch (final IllegalStateException e) {
            // the JVM is already shutting down and runs the hook itself
        }
    }
}
