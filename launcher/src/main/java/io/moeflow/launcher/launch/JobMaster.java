package io.moeflow.launcher.launch;

import java.io.IOException;
import java.io.PrintStream;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import java.util.stream.IntStream;

import io.moeflow.launcher.launch.RendezvousServer.Event;
import io.moeflow.launcher.launch.RendezvousServer.Kind;
import io.moeflow.transport.JobToken;

/**
 * The master of one job, on one thread: waits for the node agents, then runs generations. Each
 * generation the agents start their workers, the workers join the rendezvous (fenced by the
 * generation number, so a stale worker cannot join a newer one), and once all have joined each
 * gets the generation's job token and transport details. When a worker fails the master stops the
 * group and, while the job's single restart counter allows, starts the next generation, which
 * resumes from the newest complete checkpoint.
 */
public final class JobMaster {
    /** Exit code when the job never got going (an agent or worker did not join). */
    public static final int EXIT_NOT_STARTED = 3;
    /** Exit code when the launcher was stopped by a signal and the workers' own codes did not arrive (128 + SIGTERM). */
    public static final int EXIT_STOPPED = 143;
    /** Exit code when a node agent was lost. */
    public static final int EXIT_AGENT_LOST = 4;
    /** Separates worker arguments in a message field (the unit separator: never in a command-line word). */
    static final String ARG_SEPARATOR = "\u001f";
    private static final long POLL_NS = TimeUnit.MILLISECONDS.toNanos(100);

    /** Receives rank 0's steps. */
    @FunctionalInterface
    public interface StepListener {
        void onStep(Message step);
    }

    private final LaunchPlan plan;
    private final RendezvousServer server;
    private final PrintStream out;
    private final StepListener steps;
    private final Map<Integer, Connection> agents = new TreeMap<>();
    private volatile boolean stopRequested;

    public JobMaster(final LaunchPlan plan, final RendezvousServer server, final PrintStream out, final StepListener steps) {
        this.plan = plan;
        this.server = server;
        this.out = out;
        this.steps = steps;
    }

    /**
     * The launcher got a signal (Ctrl-C, SIGTERM): its agents are stopping the workers, which finish
     * their step and save; a worker's exit is then the end of the job, never a reason to restart.
     */
    public void requestStop() {
        stopRequested = true;
    }

    /** True once {@link #requestStop} was called. */
    public boolean stopRequested() {
        return stopRequested;
    }

    /** A failed generation: the first rank to fail and how. */
    record Failure(int rank, int exitCode, String reason, boolean restartable) {
    }

    /**
     * Runs the job to the end.
     *
     * @return 0, or the first failing worker's exit code, or {@link #EXIT_NOT_STARTED} / {@link #EXIT_AGENT_LOST}
     */
    public int run() throws InterruptedException {
        try {
            final Optional<Failure> agentsMissing = awaitAgents();
            if (agentsMissing.isPresent()) {
                out.println("moeflow launch: " + agentsMissing.get().reason());
                return agentsMissing.get().exitCode();
            }
            int restarts = 0;
            for (int generation = 0; ; generation++) {
                final Optional<Failure> failure = runGeneration(generation);
                if (failure.isEmpty()) {
                    return 0;
                }
                final Failure f = failure.get();
                stopGeneration(generation);
                if (stopRequested) {
                    return f.exitCode(); // the launcher says how to continue
                }
                if (!f.restartable() || restarts >= plan.maxRestarts()) {
                    final String budget = plan.maxRestarts() == 0 || !f.restartable() ? ""
                        : " (no restarts left: " + restarts + " of --max-restarts " + plan.maxRestarts() + " used)";
                    out.println("moeflow launch: " + describe(f) + budget);
                    return f.exitCode();
                }
                restarts++;
                out.println("moeflow launch: " + describe(f) + "; restarting the group from the newest complete checkpoint"
                    + " (restart " + restarts + " of " + plan.maxRestarts() + ")");
            }
        } finally {
            for (final Connection agent : agents.values()) {
                try {
                    agent.send(Message.of("END"));
                } catch (final IOException e) {
                    // the agent is gone already
                }
            }
        }
    }

    private static String describe(final Failure f) {
        return f.rank() < 0 ? f.reason() : "rank " + f.rank() + " failed: " + f.reason();
    }

    private Optional<Failure> awaitAgents() throws InterruptedException {
        final long deadline = System.nanoTime() + plan.joinTimeoutNs();
        while (agents.size() < plan.nnodes()) {
            final long left = deadline - System.nanoTime();
            if (left <= 0) {
                final List<Integer> missing = IntStream.range(0, plan.nnodes()).filter(n -> !agents.containsKey(n)).boxed().toList();
                return Optional.of(new Failure(-1, EXIT_NOT_STARTED, "node agent(s) " + missing + " did not join the rendezvous within "
                    + seconds(plan.joinTimeoutNs()) + "; check that they can reach the master (--master-addr, --master-port)", false));
            }
            final Optional<Event> event = server.poll(Math.min(left, POLL_NS));
            if (event.isEmpty() || event.get().kind() != Kind.HELLO) {
                continue;
            }
            final Event e = event.get();
            if (!e.hello().verb().equals("AGENT")) {
                reject(e.connection(), "no generation is running yet");
                continue;
            }
            final int node = e.hello().getInt("node");
            final int nproc = e.hello().getInt("nproc");
            if (node < 0 || node >= plan.nnodes() || agents.containsKey(node) || nproc != plan.nprocPerNode()) {
                reject(e.connection(), "node " + node + " with " + nproc + " workers does not fit this job (" + plan.nnodes()
                    + " nodes of " + plan.nprocPerNode() + ", joined " + agents.keySet() + ")");
                continue;
            }
            agents.put(node, e.connection());
            send(e.connection(), Message.of("JOB", "run", plan.runId(), "node", node, "nnodes", plan.nnodes(), "nproc",
                plan.nprocPerNode(), "world", plan.worldSize()));
        }
        return Optional.empty();
    }

    /** Runs one generation; empty when every worker exited with 0. */
    private Optional<Failure> runGeneration(final int generation) throws InterruptedException {
        final String args = String.join(ARG_SEPARATOR, plan.argsOf(generation));
        for (final Connection agent : agents.values()) {
            send(agent, Message.of("START", "gen", generation, "args", args));
        }
        final int world = plan.worldSize();
        final Connection[] workers = new Connection[world];
        final boolean[] exited = new boolean[world];
        int joined = 0;
        int finished = 0;
        int closedWorkers = 0;
        final long joinDeadline = System.nanoTime() + plan.joinTimeoutNs();
        final byte[] token = new byte[JobToken.LENGTH_BYTES];
        new SecureRandom().nextBytes(token);
        while (finished < world) {
            if (joined < world && System.nanoTime() - joinDeadline > 0) {
                final List<Integer> missing = IntStream.range(0, world).filter(r -> workers[r] == null && !exited[r]).boxed().toList();
                return Optional.of(new Failure(-1, EXIT_NOT_STARTED, "rank(s) " + missing
                    + " did not join the rendezvous within " + seconds(plan.joinTimeoutNs()) + " (see "
                    + missing.stream().map(r -> "rank-" + r + ".log").collect(Collectors.joining(", ")) + " in " + plan.runDir()
                    + "); on a busy host raise --join-timeout", false));
            }
            final Optional<Event> polled = server.poll(POLL_NS);
            if (polled.isEmpty()) {
                continue;
            }
            final Event e = polled.get();
            final boolean fromAgent = e.hello().verb().equals("AGENT");
            if (e.kind() == Kind.CLOSED) {
                if (fromAgent && agents.containsValue(e.connection())) {
                    final int node = nodeOf(e.connection());
                    agents.remove(node);
                    return Optional.of(new Failure(-1, EXIT_AGENT_LOST, "the node agent of node " + node + " was lost (its connection"
                        + " closed)", false));
                }
                // a worker's connection: its agent reports the exit; after a stop signal the agent may be gone first
                if (stopRequested && ++closedWorkers == world) {
                    return Optional.of(new Failure(-1, EXIT_STOPPED, "stopped by a signal", false));
                }
                continue;
            }
            if (e.kind() == Kind.HELLO) {
                if (fromAgent) {
                    reject(e.connection(), "the job's agents have all joined");
                    continue;
                }
                final int gen = e.hello().getInt("gen");
                final int rank = e.hello().getInt("rank");
                if (gen != generation || rank < 0 || rank >= world || workers[rank] != null) {
                    reject(e.connection(), "worker rank " + rank + " of generation " + gen + " is stale or a duplicate (current"
                        + " generation " + generation + ")");
                    continue;
                }
                workers[rank] = e.connection();
                if (++joined == world) {
                    final String hex = HexFormat.of().formatHex(token);
                    for (int r = 0; r < world; r++) {
                        send(workers[r], Message.of("READY", "gen", generation, "world", world, "job", plan.runId() + "-g" + generation,
                            "token", hex));
                    }
                }
                continue;
            }
            final Message m = e.message();
            if (fromAgent && m.verb().equals("EXIT") && m.getInt("gen") == generation) {
                final int rank = m.getInt("rank");
                final int code = m.getInt("code");
                exited[rank] = true;
                if (code != 0) {
                    return Optional.of(new Failure(rank, code, m.get("reason", "exit code " + code), true));
                }
                finished++;
            } else if (!fromAgent && m.verb().equals("STEP") && e.hello().getInt("rank") == 0
                && e.hello().getInt("gen") == generation) {
                steps.onStep(m);
            }
        }
        return Optional.empty();
    }

    /** Tells every agent to stop generation {@code generation} and waits (bounded) until they say they did. */
    private void stopGeneration(final int generation) throws InterruptedException {
        for (final Connection agent : agents.values()) {
            send(agent, Message.of("STOP", "gen", generation));
        }
        final List<Integer> waiting = new ArrayList<>(agents.keySet());
        final long deadline = System.nanoTime() + plan.stopTimeoutNs();
        while (!waiting.isEmpty() && System.nanoTime() - deadline < 0) {
            final Optional<Event> polled = server.poll(POLL_NS);
            if (polled.isEmpty()) {
                continue;
            }
            final Event e = polled.get();
            if (!e.hello().verb().equals("AGENT") || !agents.containsValue(e.connection())) {
                if (e.kind() == Kind.HELLO) {
                    reject(e.connection(), "generation " + generation + " is stopping");
                }
                continue;
            }
            final int node = nodeOf(e.connection());
            if (e.kind() == Kind.CLOSED) {
                agents.remove(node);
                waiting.remove(Integer.valueOf(node));
            } else if (e.message().verb().equals("STOPPED") && e.message().getInt("gen") == generation) {
                waiting.remove(Integer.valueOf(node));
            }
        }
        if (!waiting.isEmpty()) {
            out.println("moeflow launch: warning: node agent(s) " + waiting + " did not confirm the stop of generation " + generation
                + " within " + seconds(plan.stopTimeoutNs()));
        }
    }

    private int nodeOf(final Connection connection) {
        return agents.entrySet().stream().filter(en -> en.getValue() == connection).map(Map.Entry::getKey).findFirst().orElse(-1);
    }

    private static void reject(final Connection connection, final String reason) {
        try {
            connection.send(Message.of("REJECT", "reason", reason));
        } catch (final IOException e) {
            // dropping it anyway
        }
        connection.close();
    }

    private static void send(final Connection connection, final Message message) {
        try {
            connection.send(message);
        } catch (final IOException e) {
            // the reader thread sees the closed connection and reports it as an event
        }
    }

    static String seconds(final long ns) {
        return TimeUnit.NANOSECONDS.toSeconds(ns) + " s";
    }

    /** Splits a START message's {@code args} field. */
    static List<String> splitArgs(final String joined) {
        return joined.isEmpty() ? List.of() : Arrays.asList(joined.split(ARG_SEPARATOR, -1));
    }
}
