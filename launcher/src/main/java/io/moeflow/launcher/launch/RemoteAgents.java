package io.moeflow.launcher.launch;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.IntFunction;

/**
 * The node agents a launcher started on other nodes through an {@link AgentStarter} (a {@code --hostfile} launch): it
 * writes each agent's join key to its standard input, relays its output prefixed {@code [node r]}, starts a new agent
 * of a node when the master waits for one ({@link JobMaster.ReplacementListener}), tells the master when an agent
 * ended (so it need not wait out the join timeout for one that cannot come), and ends them all on {@link #close()},
 * whatever way the job ended.
 */
public final class RemoteAgents implements JobMaster.ReplacementListener, AutoCloseable {
    private final AgentStarter starter;
    private final IntFunction<List<String>> commandOfNode;
    private final Path workDir;
    private final String joinKey;
    private final PrintStream out;
    private final long stopTimeoutNs;
    private final List<Started> nodes = new ArrayList<>();
    private boolean closed;
    private volatile JobMaster master;

    /** One node's current agent process. */
    private static final class Started {
        final int node;
        final Process process;
        Thread relay;
        volatile String lastLine = "";

        Started(final int node, final Process process) {
            this.node = node;
            this.process = process;
        }
    }

    /**
     * @param starter       how to run a command on a node
     * @param commandOfNode the agent command of node r
     * @param workDir       the directory the agents run in (the launcher's)
     * @param joinKey       written to each agent's standard input
     * @param out           where the agents' output is relayed
     * @param stopTimeoutNs how long an agent has to end once its master ended, before it is cut off
     */
    public RemoteAgents(final AgentStarter starter, final IntFunction<List<String>> commandOfNode, final Path workDir, final String joinKey,
                        final PrintStream out, final long stopTimeoutNs) {
        this.starter = starter;
        this.commandOfNode = commandOfNode;
        this.workDir = workDir;
        this.joinKey = joinKey;
        this.out = out;
        this.stopTimeoutNs = stopTimeoutNs;
    }

    /** Connects these agents to the job's master: it asks for replacements, and hears when an agent ended. */
    public void attach(final JobMaster jobMaster) {
        jobMaster.onReplacementWanted(this);
        jobMaster.stopAgentsOnStopRequest(); // a signal reaches this launcher only, not the agents on other hosts
        final List<Started> all;
        synchronized (this) {
            master = jobMaster;
            all = new ArrayList<>(nodes);
        }
        for (final Started s : all) {
            final String failure = failure(s);
            if (failure != null) {
                jobMaster.agentEnded(failure); // it ended before the master was there to hear it
            }
        }
    }

    /** Starts the agents of nodes 0 .. nnodes-1. */
    public synchronized void startAll(final int nnodes) throws IOException {
        for (int node = 0; node < nnodes; node++) {
            nodes.add(start(node));
        }
    }

    private Started start(final int node) throws IOException {
        final Process process = starter.start(node, commandOfNode.apply(node), workDir);
        final Started started = new Started(node, process);
        started.relay = new Thread(() -> relay(started), "moeflow-agent-output-" + node);
        started.relay.setDaemon(true);
        started.relay.start();
        try {
            final OutputStream stdin = process.getOutputStream();
            stdin.write((joinKey + "\n").getBytes(StandardCharsets.US_ASCII));
            stdin.flush(); // kept open: the agent's standard input stays the link it was started with
        } catch (final IOException e) {
            // the process ended at once: its output says why, and the master reports the node missing
        }
        return started;
    }

    private void relay(final Started started) {
        try (BufferedReader lines = new BufferedReader(new InputStreamReader(started.process.getInputStream(), StandardCharsets.UTF_8))) {
            for (String line = lines.readLine(); line != null; line = lines.readLine()) {
                out.println("[node " + started.node + "] " + line);
                if (!line.isBlank()) {
                    started.lastLine = line;
                }
            }
        } catch (final IOException e) {
            // the process was ended
        }
        try {
            if (!started.process.waitFor(10, TimeUnit.SECONDS)) { // its output ended: it has ended or is ending
                return; // still running without output: the master sees the agent itself
            }
        } catch (final InterruptedException e) {
            return;
        }
        final JobMaster jobMaster = master;
        final String failure = failure(started);
        synchronized (this) {
            if (closed || nodes.get(started.node) != started || failure == null || jobMaster == null) {
                return; // the end of a replaced agent, or of the job
            }
        }
        jobMaster.agentEnded(failure);
    }

    /** Why an agent ended, or null when it runs or ended with 0. */
    private String failure(final Started s) {
        if (s.process.isAlive() || s.process.exitValue() == 0) {
            return null;
        }
        return "node " + s.node + " (" + starter.where(s.node) + "): the agent ended with exit code " + s.process.exitValue()
            + (s.lastLine.isEmpty() ? "" : ": " + s.lastLine);
    }

    /**
     * The master waits for new agents of {@code lost}: ends what is left of their old agents and starts new ones.
     */
    @Override
    public synchronized void replacementWanted(final List<Integer> lost) {
        if (closed) {
            return;
        }
        for (final int node : lost) {
            final Started old = nodes.get(node);
            end(old.process, 0);
            try {
                out.println("moeflow launch: starting a new agent of node " + node + " (" + starter.where(node) + ")");
                nodes.set(node, start(node));
            } catch (final IOException e) {
                out.println("moeflow launch: could not start a new agent of node " + node + " (" + starter.where(node) + "): "
                    + e.getMessage());
            }
        }
    }

    /** Handles for the launcher to await the agents after the job ended. */
    public List<AgentHandle> handles() {
        final List<AgentHandle> handles = new ArrayList<>();
        for (int i = 0; i < nodes.size(); i++) {
            final int node = i;
            handles.add(new AgentHandle() {
                @Override
                public void await(final long timeoutNs) throws InterruptedException {
                    final Started s = started(node);
                    s.process.waitFor(timeoutNs, TimeUnit.NANOSECONDS);
                }

                @Override
                public String failure() {
                    return RemoteAgents.this.failure(started(node));
                }
            });
        }
        return handles;
    }

    private synchronized Started started(final int node) {
        return nodes.get(node);
    }

    /** The local process of node {@code node}'s current agent (tests). */
    public synchronized Process process(final int node) {
        return nodes.get(node).process;
    }

    /** Ends every agent still running: they had {@code stopTimeoutNs} after the master ended, then they are cut off. */
    @Override
    public void close() {
        final List<Started> all;
        synchronized (this) {
            closed = true;
            all = new ArrayList<>(nodes);
        }
        final long deadline = System.nanoTime() + stopTimeoutNs;
        for (final Started s : all) {
            end(s.process, Math.max(0, deadline - System.nanoTime()));
        }
        for (final Started s : all) {
            try {
                s.relay.join(TimeUnit.SECONDS.toMillis(5)); // the last lines of its output
            } catch (final InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }

    /** Waits up to {@code graceNs} for a process to end, then ends it (SIGTERM, then SIGKILL). */
    private static void end(final Process process, final long graceNs) {
        try {
            if (process.waitFor(graceNs, TimeUnit.NANOSECONDS)) {
                return;
            }
            process.destroy();
            if (!process.waitFor(5, TimeUnit.SECONDS)) {
                process.destroyForcibly();
                process.waitFor(5, TimeUnit.SECONDS);
            }
        } catch (final InterruptedException e) {
            process.destroyForcibly();
            Thread.currentThread().interrupt();
        }
    }
}
