package io.moeflow.launcher.cluster;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Assertions;
import org.junit.jupiter.api.Assumptions;

/** What the cluster test fixtures share: skip-or-fail, and running a command with a timeout. */
public final class ClusterTests {
    /** CI sets MOEFLOW_REQUIRE_CLUSTER_TESTS=1: then a cluster test that cannot run fails instead of skipping. */
    public static final boolean REQUIRED = "1".equals(System.getenv("MOEFLOW_REQUIRE_CLUSTER_TESTS"));

    private ClusterTests() {
    }

    /** Skips the test saying why when {@code ok} is false, or fails it when cluster tests are required. */
    public static void require(final boolean ok, final String why) {
        if (ok) {
            return;
        }
        if (REQUIRED) {
            Assertions.fail(why + " (MOEFLOW_REQUIRE_CLUSTER_TESTS=1: this test must run)");
        }
        Assumptions.assumeTrue(false, why);
    }

    /** Skips (or fails) unless this process runs as root and every one of {@code tools} is an executable file. */
    public static void requireRootAnd(final String... tools) {
        require(isRoot(), "needs root (network namespaces, daemons)");
        for (final String tool : tools) {
            require(Files.isExecutable(Path.of(tool)), tool + " is not installed (Debian: apt-get install openssh-server "
                + "openssh-client slurm-wlm munge iproute2)");
        }
    }

    /** Whether this process runs as root. */
    public static boolean isRoot() {
        try {
            return run(10, null, "id", "-u").out().strip().equals("0");
        } catch (final IllegalStateException e) {
            return false;
        }
    }

    /** A finished command: exit code and its output (stdout and stderr together). */
    public record Result(int code, String out) {
        /** This result, or an exception naming the command when it failed. */
        public Result check(final List<String> command) {
            if (code != 0) {
                throw new IllegalStateException(String.join(" ", command) + " exited with " + code + ": " + out.strip());
            }
            return this;
        }
    }

    /**
     * Runs a command to its end (killing it after {@code timeoutSeconds}).
     *
     * @param env extra environment, or null
     * @throws IllegalStateException when it cannot start or times out
     */
    public static Result run(final long timeoutSeconds, final Map<String, String> env, final String... command) {
        final ProcessBuilder pb = new ProcessBuilder(command).redirectErrorStream(true);
        if (env != null) {
            pb.environment().putAll(env);
        }
        try {
            final Process p = pb.start();
            p.getOutputStream().close();
            final byte[][] out = new byte[1][];
            final Thread reader = new Thread(() -> {
                try {
                    out[0] = p.getInputStream().readAllBytes();
                } catch (final IOException e) {
                    out[0] = new byte[0];
                }
            });
            reader.start();
            if (!p.waitFor(timeoutSeconds, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                p.waitFor(10, TimeUnit.SECONDS);
                throw new IllegalStateException(String.join(" ", command) + " did not end within " + timeoutSeconds + " s");
            }
            reader.join(TimeUnit.SECONDS.toMillis(10));
            return new Result(p.exitValue(), out[0] == null ? "" : new String(out[0], StandardCharsets.UTF_8));
        } catch (final IOException e) {
            throw new IllegalStateException(String.join(" ", command) + ": cannot start (" + e.getMessage() + ")", e);
        } catch (final InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(String.join(" ", command) + ": interrupted", e);
        }
    }

    /** Runs a command that must succeed; returns its output. */
    public static String check(final long timeoutSeconds, final Map<String, String> env, final String... command) {
        return run(timeoutSeconds, env, command).check(List.of(command)).out();
    }

    /** Stops a process we started: SIGTERM, then SIGKILL after {@code graceSeconds}; waits for it. */
    public static void stop(final ProcessHandle process, final long graceSeconds) {
        if (!process.isAlive()) {
            return;
        }
        process.destroy();
        try {
            process.onExit().get(graceSeconds, TimeUnit.SECONDS);
        } catch (final Exception e) {
            process.destroyForcibly();
            try {
                process.onExit().get(10, TimeUnit.SECONDS);
            } catch (final Exception ignored) {
                // reported by the caller's leak checks
            }
        }
    }
}
