package io.moeflow.launcher.launch;

import java.io.IOException;
import java.io.PrintStream;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.LinkedHashMap;
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
import io.moeflow.transport.TransportException;
import io.moeflow.transport.rdma.RdmaSupport;
import io.moeflow.transport.rdma.TransportChoice;

/**
 * The master of one job, on one thread: waits for the node agents, then runs generations. Each
 * generation the agents start their workers, the workers join the rendezvous (fenced by the
 * generation number, so a stale worker cannot join a newer one), and once all have joined each
 * gets the generation's job token and transport details. When a worker fails the master stops the
 * group and, while the job's single restart counter allows, starts the next generation, which
 * resumes from the newest complete checkpoint.
 *
 * <p>Master and agents beat each other every {@link LaunchPlan#heartbeatIntervalNs()}. A node whose
 * agent closed its connection or missed {@link LaunchPlan#MISSED_BEATS} beats is lost: the master
 * stops the other nodes' workers and, with a restart left, waits up to the join timeout for a new
 * agent of that node (only then may one join: an agent claiming a live node is rejected) before the
 * next generation; without one it ends the job with {@link #EXIT_AGENT_LOST}, naming the node.
 */
public final class JobMaster {
    /** Exit code when the job never got going (an agent or worker did not join). */
    public static final int EXIT_NOT_STARTED = 3;
    /** Exit code when the launcher was stopped by a signal and the workers' own codes did not arrive (128 + SIGTERM). */
    public static final int EXIT_STOPPED = 143;
    /** Exit code when a node (its agent) was lost and the job could not continue without it. */
    public static final int EXIT_AGENT_LOST = 4;
    /** Exit code when the transport asked for cannot run on the job's nodes ({@code --transport rdma} without RDMA). */
    public static final int EXIT_BAD_TRANSPORT = 2;
    /** Separates worker arguments in a message field (the unit separator: never in a command-line word). */
    static final String ARG_SEPARATOR = "\u001f";
    private static final long POLL_NS = TimeUnit.MILLISECONDS.toNanos(100);

    /** Receives rank 0's steps. */
    @FunctionalInterface
    public interface StepListener {
        void onStep(Message step);
    }

    /** Told when the master waits for new agents of lost nodes: a launcher that started the agents starts new ones. */
    @FunctionalInterface
    public interface ReplacementListener {
        /** The master now waits (up to the join timeout) for a new agent of each of {@code nodes}. */
        void replacementWanted(List<Integer> nodes);
    }

    /** A joined node agent. */
    private static final class Agent {
        final Connection connection;
        final String host;
        final long pid;
        /** Its RDMA probe ({@link RdmaSupport.Status#toField()}), or null. */
        final String rdma;
        long lastHeardNs;

        Agent(final Connection connection, final Message hello) {
            this.connection = connection;
            this.host = hello.get("host", connection.remote());
            this.pid = Long.parseLong(hello.get("pid", "-1"));
            this.rdma = hello.get("rdma", null);
            this.lastHeardNs = System.nanoTime();
        }
    }

    private final LaunchPlan plan;
    private final RendezvousServer server;
    private final PrintStream out;
    private final StepListener steps;
    private final Map<Integer, Agent> agents = new TreeMap<>();
    /** Host of each node, remembered after it is lost (for the message). */
    private final Map<Integer, String> hosts = new TreeMap<>();
    private long lastBeatSentNs;
    /** The rendezvous connections of the running generation's workers. */
    private final List<Connection> generationWorkers = new ArrayList<>();
    private TransportChoice transport;
    private volatile boolean stopRequested;
    private volatile boolean stopAgentsOnRequest;
    private volatile ReplacementListener replacements = nodes -> { };
    /** True while the master waits for agents (before the first generation, or for replacements). */
    private volatile boolean awaitingAgents = true;
    /** Why waiting for agents is pointless (an agent this launcher started ended before joining), or null. */
    private volatile String agentsAbort;

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

    /**
     * Makes {@link #requestStop} also tell every agent to stop its workers gracefully (they finish their step and save):
     * for agents this launcher started on other hosts, which get no signal of their own.
     */
    public void stopAgentsOnStopRequest() {
        stopAgentsOnRequest = true;
    }

    /** Sets who is told when the master waits for new agents of lost nodes (default: nobody; agents are started by hand). */
    public void onReplacementWanted(final ReplacementListener listener) {
        replacements = listener;
    }

    /**
     * An agent this launcher started (over ssh, ...) ended: while the master waits for agents, it stops waiting and ends
     * the job with {@code reason} instead of waiting out the join timeout. Ignored at other times (a running node's loss
     * is seen on its connection).
     */
    public void agentEnded(final String reason) {
        if (awaitingAgents) {
            agentsAbort = reason;
        }
    }

    /** True once {@link #requestStop} was called. */
    public boolean stopRequested() {
        return stopRequested;
    }

    /** A failed generation: the first rank to fail and how (rank -1: a node or the whole group). */
    record Failure(int rank, int exitCode, String reason, boolean restartable) {
    }

    /**
     * Runs the job to the end.
     *
     * @return 0, or the first failing worker's exit code, or {@link #EXIT_NOT_STARTED} / {@link #EXIT_AGENT_LOST}
     */
    public int run() throws InterruptedException {
        int code = EXIT_NOT_STARTED;
        try {
            final Optional<Failure> agentsMissing = awaitAgents(false);
            if (agentsMissing.isPresent()) {
                out.println("moeflow launch: " + agentsMissing.get().reason());
                return agentsMissing.get().exitCode();
            }
            if (!resolveTransport()) {
                code = EXIT_BAD_TRANSPORT;
                return code;
            }
            int restarts = 0;
            for (int generation = 0; ; generation++) {
                final Optional<Failure> failure = runGeneration(generation);
                if (failure.isEmpty()) {
                    code = 0;
                    return code;
                }
                final Failure f = failure.get();
                code = f.exitCode();
                stopGeneration(generation);
                if (stopRequested) {
                    return code; // the launcher says how to continue
                }
                if (!f.restartable() || restarts >= plan.maxRestarts()) {
                    final String budget = !f.restartable() ? ""
                        : plan.maxRestarts() == 0 ? (f.rank() < 0 ? "; no restarts allowed (--max-restarts 0)" : "")
                        : " (no restarts left: " + restarts + " of --max-restarts " + plan.maxRestarts() + " used)";
                    out.println("moeflow launch: " + describe(f) + budget);
                    return code;
                }
                restarts++;
                final String restart = " (restart " + restarts + " of " + plan.maxRestarts() + ")";
                if (agents.size() < plan.nnodes()) {
                    out.println("moeflow launch: " + describe(f) + "; waiting up to " + seconds(plan.joinTimeoutNs()) + " for a new agent"
                        + " of " + nodes(missingNodes()) + ", then restarting the group from the newest complete checkpoint" + restart);
                    replacements.replacementWanted(missingNodes());
                    final Optional<Failure> replacement = awaitAgents(true);
                    if (replacement.isPresent()) {
                        out.println("moeflow launch: " + replacement.get().reason());
                        code = replacement.get().exitCode();
                        return code;
                    }
                    if (!resolveTransport()) { // the replacement's probe counts too: rdma needs it on every node
                        code = EXIT_BAD_TRANSPORT;
                        return code;
                    }
                } else {
                    out.println("moeflow launch: " + describe(f) + "; restarting the group from the newest complete checkpoint" + restart);
                }
            }
        } finally {
            for (final Agent agent : agents.values()) {
                try {
                    agent.connection.send(Message.of("END", "code", code));
                } catch (final IOException e) {
                    // the agent is gone already
                }
            }
        }
    }

    private static String describe(final Failure f) {
        return f.rank() < 0 ? f.reason() : "rank " + f.rank() + " failed: " + f.reason();
    }

    private List<Integer> missingNodes() {
        return IntStream.range(0, plan.nnodes()).filter(n -> !agents.containsKey(n)).boxed().toList();
    }

    /** "node 1 (host a)" or "nodes [1, 2]". */
    private String nodes(final List<Integer> nodes) {
        return nodes.size() == 1 ? "node " + nodes.get(0) + (hosts.containsKey(nodes.get(0)) ? " (host " + hosts.get(nodes.get(0)) + ")" : "")
            : "nodes " + nodes;
    }

    /**
     * Waits until every node has its agent: at the start, or after nodes were lost ({@code replacing}), when only agents
     * of the lost nodes may join.
     */
    private Optional<Failure> awaitAgents(final boolean replacing) throws InterruptedException {
        if (replacing) {
            agentsAbort = null; // the end of a lost agent is no reason to give up on its replacement
        }
        awaitingAgents = true;
        try {
            return awaitAgentsUntilJoined(replacing);
        } finally {
            awaitingAgents = false;
        }
    }

    private Optional<Failure> awaitAgentsUntilJoined(final boolean replacing) throws InterruptedException {
        final long deadline = System.nanoTime() + plan.joinTimeoutNs();
        while (agents.size() < plan.nnodes()) {
            final String abort = agentsAbort;
            if (abort != null) {
                return Optional.of(new Failure(-1, replacing ? EXIT_AGENT_LOST : EXIT_NOT_STARTED, abort, false));
            }
            final long left = deadline - System.nanoTime();
            if (left <= 0) {
                final List<Integer> missing = missingNodes();
                return Optional.of(replacing
                    ? new Failure(-1, EXIT_AGENT_LOST, "no new agent of " + nodes(missing) + " joined within " + seconds(plan.joinTimeoutNs())
                        + " after it was lost; giving up (start one with --node-rank " + missing.get(0) + " and the same options)", false)
                    : new Failure(-1, EXIT_NOT_STARTED, "node agent(s) " + missing + " did not join the rendezvous within "
                        + seconds(plan.joinTimeoutNs()) + "; check that they can reach the master (--master-addr, --master-port)", false));
            }
            checkHeartbeats().ifPresent(lost -> out.println("moeflow launch: " + lost.reason()));
            final Optional<Event> event = server.poll(Math.min(left, POLL_NS));
            if (event.isEmpty()) {
                continue;
            }
            final Event e = event.get();
            final Agent from = heard(e);
            if (e.kind() == Kind.CLOSED && from != null) {
                out.println("moeflow launch: " + lose(nodeOf(e.connection()), "its agent's connection closed"));
            }
            if (e.kind() != Kind.HELLO) {
                continue;
            }
            if (!e.hello().verb().equals("AGENT")) {
                reject(e.connection(), "no generation is running yet");
                continue;
            }
            admit(e);
        }
        return Optional.empty();
    }

    /** Admits an agent's hello when it fits a node without an agent, or rejects it with the reason. */
    private void admit(final Event e) {
        final Message hello = e.hello();
        final int node = hello.getInt("node");
        final int nproc = hello.getInt("nproc");
        final int nnodes = Integer.parseInt(hello.get("nnodes", Integer.toString(plan.nnodes())));
        if (node < 0 || node >= plan.nnodes() || nproc != plan.nprocPerNode() || nnodes != plan.nnodes()) {
            reject(e.connection(), "node " + node + " of " + nnodes + " with " + nproc + " workers does not fit this job (" + plan.nnodes()
                + " nodes of " + plan.nprocPerNode() + " workers)");
            return;
        }
        final Agent live = agents.get(node);
        if (live != null) {
            reject(e.connection(), "node " + node + " already has a live agent (pid " + live.pid + " on " + live.host + "); a new agent of"
                + " node " + node + " may join only after that one is lost", true);
            return;
        }
        if (!hello.get("args", "").equals(plan.argsHash())) {
            reject(e.connection(), "train options differ from node 0's (their hash " + hello.get("args", "none") + ", node 0's "
                + plan.argsHash() + "); give every node the same train options");
            return;
        }
        final Agent agent = new Agent(e.connection(), hello);
        agents.put(node, agent);
        hosts.put(node, agent.host);
        send(agent.connection, Message.of("JOB", "run", plan.runId(), "node", node, "nnodes", plan.nnodes(), "nproc",
            plan.nprocPerNode(), "world", plan.worldSize(), "beatMs", TimeUnit.NANOSECONDS.toMillis(plan.heartbeatIntervalNs()),
            "boundMs", TimeUnit.NANOSECONDS.toMillis(plan.failureBoundNs()), "udpMtu", plan.udpMtuBytes()));
    }

    /**
     * Chooses the transport ({@link #chooseTransport}) and says so when the choice is new (at the start, or a replacement
     * changed it); false, having said why, when the transport asked for cannot run on the job's nodes.
     */
    private boolean resolveTransport() {
        final TransportChoice before = transport;
        try {
            transport = chooseTransport();
        } catch (final IllegalArgumentException | TransportException e) {
            out.println("moeflow launch: " + e.getMessage());
            return false;
        }
        if (before == null || transport.kind() != before.kind()) {
            out.println("moeflow launch: transport " + transport.reason());
        }
        return true;
    }

    /** Resolves {@code --transport} from every node's RDMA probe (reported in its AGENT hello): at the start and after a node was replaced. */
    private TransportChoice chooseTransport() {
        final List<TransportChoice.NodeRdma> probes = new ArrayList<>();
        agents.forEach((node, agent) -> probes.add(new TransportChoice.NodeRdma("node " + node + " (host " + agent.host + ")",
            RdmaSupport.Status.ofField(agent.rdma))));
        return TransportChoice.resolve(plan.transport(), plan.nprocPerNode(), probes);
    }

    /** The transport part of READY, from the workers' hellos (checked by {@link #checkWorkerHello}). */
    private WorkerTransport workerTransport(final Message[] hellos) {
        final List<String> endpoints = new ArrayList<>();
        final List<String> rdma = new ArrayList<>();
        final int[] nodes = new int[hellos.length];
        for (int r = 0; r < hellos.length; r++) {
            endpoints.add(WorkerTransport.endpointOf(hellos[r]));
            nodes[r] = r / plan.nprocPerNode();
            if (transport.kind() == TransportChoice.Kind.RDMA) {
                rdma.add(hellos[r].get("rdma"));
            }
        }
        return new WorkerTransport(transport.kind(), endpoints, nodes, rdma);
    }

    /** Null when a worker's hello says where it receives, as the chosen transport needs; else why not. */
    private String checkWorkerHello(final Message hello) {
        try {
            WorkerTransport.endpointOf(hello);
            if (transport.kind() == TransportChoice.Kind.RDMA) {
                WorkerTransport.portOf(hello.get("rdma"));
            }
            return null;
        } catch (final IllegalArgumentException | IndexOutOfBoundsException bad) {
            return bad.getMessage() + " (the " + transport.kind().wireName() + " transport needs where each rank receives)";
        }
    }

    /** Runs one generation; empty when every worker exited with 0. */
    private Optional<Failure> runGeneration(final int generation) throws InterruptedException {
        final String args = String.join(ARG_SEPARATOR, plan.argsOf(generation));
        for (final Agent agent : agents.values()) {
            send(agent.connection, Message.of("START", "gen", generation, "args", args));
        }
        final int world = plan.worldSize();
        final Connection[] workers = new Connection[world];
        final Message[] hellos = new Message[world];
        final boolean[] exited = new boolean[world];
        int joined = 0;
        int finished = 0;
        int closedWorkers = 0;
        final long joinDeadline = System.nanoTime() + plan.joinTimeoutNs();
        final byte[] token = new byte[JobToken.LENGTH_BYTES];
        new SecureRandom().nextBytes(token);
        boolean toldAgentsToStop = false;
        boolean stopFromNode = false;
        while (finished < world) {
            if (stopRequested && (stopAgentsOnRequest || stopFromNode) && !toldAgentsToStop) {
                toldAgentsToStop = true;
                for (final Agent agent : agents.values()) {
                    send(agent.connection, Message.of("STOP", "gen", generation, "graceful", "yes"));
                }
            }
            if (joined < world && System.nanoTime() - joinDeadline > 0) {
                final List<Integer> missing = IntStream.range(0, world).filter(r -> workers[r] == null && !exited[r]).boxed().toList();
                return Optional.of(new Failure(-1, EXIT_NOT_STARTED, "rank(s) " + missing
                    + " did not join the rendezvous within " + seconds(plan.joinTimeoutNs()) + " (see "
                    + missing.stream().map(r -> "rank-" + r + ".log").collect(Collectors.joining(", ")) + " in " + plan.runDir()
                    + "); on a busy host raise --join-timeout", false));
            }
            final Optional<Failure> silent = checkHeartbeats();
            if (silent.isPresent()) {
                return silent;
            }
            final Optional<Event> polled = server.poll(POLL_NS);
            if (polled.isEmpty()) {
                continue;
            }
            final Event e = polled.get();
            final boolean fromAgent = e.hello().verb().equals("AGENT");
            final Agent agent = heard(e);
            if (e.kind() == Kind.CLOSED) {
                if (agent != null && stopRequested) {
                    // a node stopping on a signal: its workers saved with the others; the job ends once the rest have exited
                    final int node = nodeOf(e.connection());
                    agents.remove(node);
                    for (int r = node * plan.nprocPerNode(); r < (node + 1) * plan.nprocPerNode(); r++) {
                        if (!exited[r]) {
                            exited[r] = true;
                            finished++;
                        }
                    }
                    continue;
                }
                if (agent != null) {
                    return Optional.of(new Failure(-1, EXIT_AGENT_LOST, lose(nodeOf(e.connection()), "its agent's connection closed"), true));
                }
                // a worker's connection: its agent reports the exit; after a stop signal the agent may be gone first
                if (!fromAgent && stopRequested && ++closedWorkers == world) {
                    return Optional.of(new Failure(-1, EXIT_STOPPED, "stopped by a signal", false));
                }
                continue;
            }
            if (e.kind() == Kind.HELLO) {
                if (fromAgent) {
                    admit(e); // rejected: every node has its live agent
                    continue;
                }
                final int gen = e.hello().getInt("gen");
                final int rank = e.hello().getInt("rank");
                if (gen != generation || rank < 0 || rank >= world || workers[rank] != null) {
                    reject(e.connection(), "worker rank " + rank + " of generation " + gen + " is stale or a duplicate (current"
                        + " generation " + generation + ")");
                    continue;
                }
                final String badHello = checkWorkerHello(e.hello());
                if (badHello != null) {
                    reject(e.connection(), "worker rank " + rank + ": " + badHello);
                    continue;
                }
                workers[rank] = e.connection();
                generationWorkers.add(e.connection());
                hellos[rank] = e.hello();
                if (++joined == world) {
                    final Map<String, String> ready = new LinkedHashMap<>();
                    ready.put("gen", Integer.toString(generation));
                    ready.put("world", Integer.toString(world));
                    ready.put("job", plan.runId() + "-g" + generation);
                    ready.put("token", HexFormat.of().formatHex(token));
                    ready.putAll(workerTransport(hellos).readyFields());
                    for (int r = 0; r < world; r++) {
                        send(workers[r], new Message("READY", ready));
                    }
                }
                continue;
            }
            final Message m = e.message();
            if (agent != null && m.verb().equals("STOPPING")) {
                if (!stopRequested) {
                    out.println("moeflow launch: " + nodes(List.of(m.getInt("node"))) + " got a stop signal: every rank stops after"
                        + " the same step and saves; the job ends there");
                }
                stopRequested = true;
                stopFromNode = true;
                continue;
            }
            if (agent != null && m.verb().equals("EXIT") && m.getInt("gen") == generation) {
                final int rank = m.getInt("rank");
                final int code = m.getInt("code");
                exited[rank] = true;
                if (code != 0) {
                    return Optional.of(new Failure(rank, code, m.get("reason", "exit code " + code), !m.get("fatal", "").equals("yes")));
                }
                finished++;
            } else if (!fromAgent && m.verb().equals("STEP") && e.hello().getInt("rank") == 0
                && e.hello().getInt("gen") == generation) {
                steps.onStep(m);
            }
        }
        // every rank exited with 0, or exited while its node stopped on a signal (its agent left without reporting)
        return agents.size() < plan.nnodes() ? Optional.of(new Failure(-1, EXIT_STOPPED, "stopped by a signal", false))
            : Optional.empty();
    }

    /**
     * Tells every agent to stop generation {@code generation} and waits (bounded) until they say they did; then closes the
     * generation's worker connections, so that a worker whose agent hangs or was lost sees its master gone and halts
     * (unless the launcher is stopping on a signal: then workers may still be saving).
     */
    private void stopGeneration(final int generation) throws InterruptedException {
        for (final Agent agent : agents.values()) {
            send(agent.connection, Message.of("STOP", "gen", generation));
        }
        final List<Integer> waiting = new ArrayList<>(agents.keySet());
        final long deadline = System.nanoTime() + plan.stopTimeoutNs();
        while (!waiting.isEmpty() && System.nanoTime() - deadline < 0) {
            checkHeartbeats().ifPresent(lost -> out.println("moeflow launch: " + lost.reason()));
            waiting.retainAll(agents.keySet());
            final Optional<Event> polled = server.poll(POLL_NS);
            if (polled.isEmpty()) {
                continue;
            }
            final Event e = polled.get();
            final Agent agent = heard(e);
            if (agent == null) {
                if (e.kind() == Kind.HELLO) {
                    reject(e.connection(), "generation " + generation + " is stopping", e.hello().verb().equals("AGENT"));
                }
                continue;
            }
            final int node = nodeOf(e.connection());
            if (e.kind() == Kind.CLOSED) {
                final String lost = lose(node, "its agent's connection closed");
                if (!stopRequested) { // on a stop signal agents leave as their workers end: expected, not a loss
                    out.println("moeflow launch: " + lost);
                }
                waiting.remove(Integer.valueOf(node));
            } else if (e.message().verb().equals("STOPPED") && e.message().getInt("gen") == generation) {
                waiting.remove(Integer.valueOf(node));
            }
        }
        if (!waiting.isEmpty()) {
            out.println("moeflow launch: warning: node agent(s) " + waiting + " did not confirm the stop of generation " + generation
                + " within " + seconds(plan.stopTimeoutNs()));
        }
        if (!stopRequested) {
            generationWorkers.forEach(Connection::close);
        }
        generationWorkers.clear();
    }

    /** The joined agent an event came from (noting that it was heard from), or null (a worker, a lost or rejected agent). */
    private Agent heard(final Event e) {
        if (!e.hello().verb().equals("AGENT")) {
            return null;
        }
        final int node = nodeOf(e.connection());
        final Agent agent = node < 0 ? null : agents.get(node);
        if (agent != null) {
            agent.lastHeardNs = System.nanoTime();
        }
        return agent;
    }

    /**
     * Beats every agent once per interval, and declares lost the first node whose agent was silent for
     * {@link LaunchPlan#MISSED_BEATS} intervals.
     */
    private Optional<Failure> checkHeartbeats() {
        final long now = System.nanoTime();
        if (now - lastBeatSentNs >= plan.heartbeatIntervalNs()) {
            lastBeatSentNs = now;
            for (final Agent agent : agents.values()) {
                send(agent.connection, Message.of("HEARTBEAT"));
            }
        }
        for (final Map.Entry<Integer, Agent> en : agents.entrySet()) {
            if (now - en.getValue().lastHeardNs > LaunchPlan.MISSED_BEATS * plan.heartbeatIntervalNs()) {
                return Optional.of(new Failure(-1, EXIT_AGENT_LOST, lose(en.getKey(), "its agent stopped answering ("
                    + LaunchPlan.MISSED_BEATS + " heartbeats of " + millis(plan.heartbeatIntervalNs()) + " missed)"), true));
            }
        }
        return Optional.empty();
    }

    /** Declares node {@code node} lost: drops its agent (closing its connection, so a live one stops) and says so. */
    private String lose(final int node, final String why) {
        final Agent agent = agents.remove(node);
        if (agent != null) {
            agent.connection.close();
        }
        return nodes(List.of(node)) + " was lost: " + why;
    }

    private int nodeOf(final Connection connection) {
        return agents.entrySet().stream().filter(en -> en.getValue().connection == connection).map(Map.Entry::getKey).findFirst()
            .orElse(-1);
    }

    private static void reject(final Connection connection, final String reason) {
        reject(connection, reason, false);
    }

    /** @param retry the peer may try again soon (an agent replacing a node the master has not yet declared lost) */
    private static void reject(final Connection connection, final String reason, final boolean retry) {
        try {
            connection.send(retry ? Message.of("REJECT", "reason", reason, "retry", "yes") : Message.of("REJECT", "reason", reason));
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

    /** "1 s", "0.2 s". */
    static String millis(final long ns) {
        final long ms = TimeUnit.NANOSECONDS.toMillis(ns);
        return ms % 1000 == 0 ? ms / 1000 + " s" : ms / 1000.0 + " s";
    }

    /** Splits a START message's {@code args} field. */
    static List<String> splitArgs(final String joined) {
        return joined.isEmpty() ? List.of() : Arrays.asList(joined.split(ARG_SEPARATOR, -1));
    }
}
