package io.moeflow.launcher.launch;

import java.io.EOFException;
import java.io.IOException;
import java.net.DatagramSocket;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.function.BiFunction;

import org.agrona.IoUtil;

import io.moeflow.trainer.StepMetrics;
import io.moeflow.transport.Communicator;
import io.moeflow.transport.CommunicatorConfig;
import io.moeflow.transport.Communicators;
import io.moeflow.transport.JobToken;
import io.moeflow.transport.Transport;
import io.moeflow.transport.aeron.AeronTransport;
import io.moeflow.transport.aeron.AeronTransportConfig;
import io.moeflow.transport.rdma.DisniVerbs;
import io.moeflow.transport.rdma.RdmaSupport;
import io.moeflow.transport.rdma.RdmaTransport;
import io.moeflow.transport.rdma.RdmaTransportConfig;
import io.moeflow.transport.rdma.TransportChoice;
import io.moeflow.transport.rdma.Verbs;

/**
 * A worker's side of a launched job: reads the environment its node agent set, joins the
 * rendezvous, receives the generation's job token, and connects the transport. From then on it
 * watches both its agent (parent pid) and the master (the rendezvous connection): if either is
 * gone, it removes the node's /dev/shm job directory and halts within about a second, so that a
 * launcher killed with SIGKILL leaves no worker behind.
 */
public final class WorkerSession implements AutoCloseable {
    /** Exit code of a worker whose launcher disappeared. */
    public static final int EXIT_ORPHANED = 5;
    private static final long WATCH_INTERVAL_MS = 250;
    /** An orphaned worker halts after this long even when it cannot print why (its agent no longer reads its output). */
    private static final long ORPHAN_PRINT_MS = 1000;
    /** Rank 0 reports at most this often to the launcher's progress line (and always the last step). */
    private static final long STEP_REPORT_INTERVAL_NS = TimeUnit.MILLISECONDS.toNanos(200);

    /**
     * What the agent put in the environment.
     *
     * @param nodeAddr  where this node's workers receive UDP and RDMA ({@link WorkerEnv#NODE_ADDR})
     * @param transport the {@code --transport} flag ({@link WorkerEnv#TRANSPORT}); READY says what the master chose
     * @param udpMtuBytes the largest UDP frame towards other nodes ({@link WorkerEnv#UDP_MTU}, launch --udp-mtu)
     * @param failureBoundNs the job's transport failure bound ({@link WorkerEnv#FAILURE_BOUND_MS}, launch --failure-bound)
     */
    public record Environment(int rank, int localRank, int worldSize, int localWorldSize, String masterAddr, int masterPort,
                              String runId, int generation, String joinKey, Path jobDir, String aeronDir, long agentPid,
                              long joinTimeoutNs, boolean neverJoin, String nodeAddr, String transport,
                              int udpMtuBytes, long failureBoundNs) {

        /** The environment of a launched worker, or empty when this process was not started by {@code moeflow launch}. */
        public static Optional<Environment> current() {
            return of(System.getenv());
        }

        static Optional<Environment> of(final Map<String, String> env) {
            if (!env.containsKey(WorkerEnv.RUN_ID)) {
                return Optional.empty();
            }
            try {
                return Optional.of(new Environment(integer(env, WorkerEnv.RANK), integer(env, WorkerEnv.LOCAL_RANK),
                    integer(env, WorkerEnv.WORLD_SIZE), integer(env, WorkerEnv.LOCAL_WORLD_SIZE), text(env, WorkerEnv.MASTER_ADDR),
                    integer(env, WorkerEnv.MASTER_PORT), text(env, WorkerEnv.RUN_ID), integer(env, WorkerEnv.GENERATION),
                    text(env, JoinKey.ENV), Path.of(text(env, WorkerEnv.JOB_DIR)), text(env, WorkerEnv.AERON_DIR),
                    Long.parseLong(text(env, WorkerEnv.AGENT_PID)),
                    TimeUnit.SECONDS.toNanos(Long.parseLong(text(env, WorkerEnv.JOIN_TIMEOUT_S))),
                    env.containsKey(WorkerEnv.TEST_NEVER_JOIN), text(env, WorkerEnv.NODE_ADDR), text(env, WorkerEnv.TRANSPORT), integer(env, WorkerEnv.UDP_MTU),
                    TimeUnit.MILLISECONDS.toNanos(Long.parseLong(text(env, WorkerEnv.FAILURE_BOUND_MS)))));
            } catch (final NumberFormatException e) {
                throw new IllegalArgumentException("a launched worker's environment holds a bad number (" + e.getMessage()
                    + "); start workers with moeflow launch");
            }
        }

        private static String text(final Map<String, String> env, final String name) {
            final String value = env.get(name);
            if (value == null || value.isBlank()) {
                throw new IllegalArgumentException(WorkerEnv.RUN_ID + " is set but " + name + " is not: this process looks like a "
                    + "launched worker with an incomplete environment; start workers with moeflow launch, or unset " + WorkerEnv.RUN_ID);
            }
            return value;
        }

        private static int integer(final Map<String, String> env, final String name) {
            return Integer.parseInt(text(env, name));
        }
    }

    private final Environment env;
    private final Connection master;
    private final JobToken token;
    private final String transportJobId;
    private final WorkerTransport transport;
    private final StepMetricsLine stepLine = new StepMetricsLine();
    private volatile boolean closing;
    private Communicator communicator;
    private long lastStepReportNs;

    private WorkerSession(final Environment env, final Connection master, final JobToken token, final String transportJobId,
                          final WorkerTransport transport) {
        this.env = env;
        this.master = master;
        this.token = token;
        this.transportJobId = transportJobId;
        this.transport = transport;
    }

    /**
     * Starts the watchdogs, joins the rendezvous and waits for every rank of the generation to join
     * (at most the launcher's join timeout).
     *
     * @throws IOException when the master cannot be reached, refuses this worker, or does not answer in time
     */
    public static WorkerSession join(final Environment env) throws IOException, InterruptedException {
        final long timeoutNs = env.joinTimeoutNs();
        watchAgent(env);
        if (env.neverJoin()) {
            System.out.println("rank " + env.rank() + ": test hook " + WorkerEnv.TEST_NEVER_JOIN + ": not joining the rendezvous");
            Thread.sleep(Long.MAX_VALUE); // the watchdog ends this process once the launcher has given up
        }
        final int udpPort = freePort(env, false);
        final String rdmaAddress = rdmaAddress(env);
        final Connection master = Connection.open(env.masterAddr(), env.masterPort(), timeoutNs);
        try {
            final Map<String, String> hello = new LinkedHashMap<>();
            hello.put("gen", Integer.toString(env.generation()));
            hello.put("rank", Integer.toString(env.rank()));
            hello.put("key", env.joinKey());
            hello.putAll(WorkerTransport.helloFields(env.nodeAddr(), udpPort, rdmaAddress));
            master.send(new Message("WORKER", hello));
            final Message ready = master.receive(timeoutNs).orElseThrow(() -> new IOException("rank " + env.rank()
                + ": the rendezvous at " + env.masterAddr() + ":" + env.masterPort() + " did not complete within "
                + TimeUnit.NANOSECONDS.toSeconds(timeoutNs) + " s"));
            if (!ready.verb().equals("READY")) {
                throw new IOException("rank " + env.rank() + ": the rendezvous refused this worker: " + ready.get("reason", ready.verb()));
            }
            if (ready.getInt("world") != env.worldSize()) {
                throw new IOException("rank " + env.rank() + ": the rendezvous says " + ready.getInt("world") + " ranks, the environment "
                    + env.worldSize());
            }
            final WorkerTransport transport;
            try {
                transport = WorkerTransport.ofReady(ready);
            } catch (final IllegalArgumentException e) {
                throw new IOException("rank " + env.rank() + ": " + e.getMessage(), e);
            }
            if (transport.worldSize() != env.worldSize()) {
                throw new IOException("rank " + env.rank() + ": the rendezvous gave " + transport.worldSize() + " endpoints for "
                    + env.worldSize() + " ranks");
            }
            final WorkerSession session = new WorkerSession(env, master, JobToken.of(HexFormat.of().parseHex(ready.get("token"))),
                ready.get("job"), transport);
            session.watchMaster();
            return session;
        } catch (final IOException | RuntimeException e) {
            master.close();
            throw e;
        }
    }

    public Environment environment() {
        return env;
    }

    public int rank() {
        return env.rank();
    }

    public int worldSize() {
        return env.worldSize();
    }

    /** What the master chose and every rank's endpoints (from READY). */
    public WorkerTransport transport() {
        return transport;
    }

    /**
     * The job-wide communicator (created on first use) over the transport the master chose: Aeron
     * IPC through the node agent's media driver, Aeron UDP with this rank's own media driver, hybrid
     * (IPC within the node, UDP across), or RDMA.
     */
    public synchronized Communicator communicator() {
        if (communicator == null) {
            final Transport connected = connect();
            System.out.println("moeflow train: rank " + env.rank() + " transport " + transport.kind().wireName() + ": "
                + connected.describe());
            communicator = Communicators.create(connected, CommunicatorConfig.DEFAULT);
        }
        return communicator;
    }

    private Transport connect() {
        final int rank = env.rank();
        final int world = env.worldSize();
        switch (transport.kind()) {
            case IPC:
                return AeronTransport.connect(AeronTransportConfig.ipc(rank, world, env.aeronDir(), transportJobId, token)
                    .withFailureBoundNs(env.failureBoundNs()));
            case UDP:
                return AeronTransport.connect(AeronTransportConfig.udp(rank, world, ownAeronDirectory(), transport.endpoints(),
                    transportJobId, token).withFailureBoundNs(env.failureBoundNs())
                    .withTermAndMtu(AeronTransportConfig.DEFAULT_TERM_LENGTH_BYTES, env.udpMtuBytes()));
            case HYBRID:
                return AeronTransport.connect(AeronTransportConfig.hybrid(rank, world, env.aeronDir(), ownAeronDirectory(),
                    transport.endpoints(), transport.nodeOfRank(), transportJobId, token).withFailureBoundNs(env.failureBoundNs())
                    .withTermAndMtu(AeronTransportConfig.DEFAULT_TERM_LENGTH_BYTES, env.udpMtuBytes()));
            case RDMA:
                return rdma();
            default:
                throw new IllegalStateException("transport " + transport.kind());
        }
    }

    /** This rank's own media driver's directory (UDP), in the node's job directory, which the agent removes. */
    private String ownAeronDirectory() {
        return env.jobDir().resolve("aeron-g" + env.generation() + "-rank" + env.rank()).toString();
    }

    /** RDMA over DiSNI; libdisni is loaded only here, after the master saw every node's probe say yes. */
    private Transport rdma() {
        return openRdma(transport, env.rank(), transportJobId, token, (config, addresses) -> RdmaSupport.open(
            () -> new DisniVerbs(config.rank(), addresses, RdmaTransport.workRequestsPerQueuePair(config), config.connectTimeoutNs())));
    }

    /**
     * Opens rank {@code rank}'s RDMA transport (default settings) with every rank's RDMA CM address from
     * READY, over the verbs {@code verbsFor} makes from the config and those addresses (DiSNI in a
     * job; the in-memory fabric in tests).
     */
    static RdmaTransport openRdma(final WorkerTransport transport, final int rank, final String jobId, final JobToken token,
                                  final BiFunction<RdmaTransportConfig, List<InetSocketAddress>, Verbs> verbsFor) {
        if (transport.kind() != TransportChoice.Kind.RDMA) {
            throw new IllegalArgumentException("transport " + transport.kind().wireName() + ": not rdma");
        }
        final List<InetSocketAddress> addresses = new ArrayList<>();
        for (final String address : transport.rdmaAddresses()) {
            addresses.add(new InetSocketAddress(WorkerTransport.hostOf(address), WorkerTransport.portOf(address)));
        }
        final RdmaTransportConfig config = RdmaTransportConfig.of(jobId, token, rank, transport.worldSize());
        return RdmaTransport.open(config, verbsFor.apply(config, addresses));
    }

    /**
     * A port the operating system says is free on the node address (UDP, or TCP for RDMA CM), released
     * at once for the transport to bind (another process could take it in between: the bind then fails
     * loudly, naming the endpoint).
     */
    private static int freePort(final Environment env, final boolean tcp) throws IOException {
        try {
            final InetAddress address = InetAddress.getByName(env.nodeAddr());
            if (tcp) {
                try (ServerSocket socket = new ServerSocket(0, 1, address)) {
                    return socket.getLocalPort();
                }
            }
            try (DatagramSocket socket = new DatagramSocket(0, address)) {
                return socket.getLocalPort();
            }
        } catch (final IOException e) {
            throw new IOException("rank " + env.rank() + ": cannot bind a " + (tcp ? "TCP" : "UDP") + " port on the node address "
                + env.nodeAddr() + " (" + WorkerEnv.NODE_ADDR + ", from --node-addr or the agent's connection to the master): "
                + e.getMessage() + "; give --node-addr an address of this host", e);
        }
    }

    /** This rank's RDMA CM address when the job may use RDMA and this host has it, else null. */
    private static String rdmaAddress(final Environment env) throws IOException {
        if (!env.transport().equals("rdma") && !env.transport().equals("auto") || !RdmaSupport.probe().available()) {
            return null;
        }
        return WorkerTransport.hostPort(env.nodeAddr(), freePort(env, true));
    }

    /** Rank 0: sends the step to the launcher's progress line (at most every 200 ms, and the run's last step). */
    public void reportStep(final StepMetrics m, final long totalSteps) {
        final long now = System.nanoTime();
        if (m.step != totalSteps && now - lastStepReportNs < STEP_REPORT_INTERVAL_NS) {
            return;
        }
        lastStepReportNs = now;
        try {
            master.send(stepLine.of(m));
        } catch (final IOException e) {
            // the master is gone: the watchdog ends this process
        }
    }

    /** Watches the agent that started this worker: when it is gone, nobody will stop this worker. */
    private static void watchAgent(final Environment env) {
        final Optional<ProcessHandle> agent = ProcessHandle.of(env.agentPid());
        final Thread watchdog = new Thread(() -> {
            while (agent.map(ProcessHandle::isAlive).orElse(false)) {
                try {
                    Thread.sleep(WATCH_INTERVAL_MS);
                } catch (final InterruptedException e) {
                    return;
                }
            }
            orphaned(env, "its node agent (pid " + env.agentPid() + ") is gone");
        }, "moeflow-agent-watchdog");
        watchdog.setDaemon(true);
        watchdog.start();
    }

    /** Watches the master: the connection ends only when the launcher is gone (or this session closes it). */
    private void watchMaster() {
        final Thread watchdog = new Thread(() -> {
            try {
                while (!closing) {
                    master.receive(TimeUnit.MILLISECONDS.toNanos(WATCH_INTERVAL_MS));
                }
            } catch (final EOFException e) {
                if (!closing) {
                    orphaned(env, "the launcher's rendezvous connection closed");
                }
            } catch (final IOException e) {
                if (!closing) {
                    orphaned(env, "the launcher's rendezvous connection failed: " + e.getMessage());
                }
            }
        }, "moeflow-master-watchdog");
        watchdog.setDaemon(true);
        watchdog.start();
    }

    private static void orphaned(final Environment env, final String why) {
        // The output goes through a pipe the agent reads: an agent that hangs no longer reads it, and a print into a full
        // pipe blocks forever. So the halt does not wait for the print.
        final Thread halt = new Thread(() -> {
            try {
                Thread.sleep(ORPHAN_PRINT_MS);
            } catch (final InterruptedException e) {
                // halting anyway
            }
            Runtime.getRuntime().halt(EXIT_ORPHANED);
        }, "moeflow-orphan-halt");
        halt.setDaemon(true);
        halt.start();
        IoUtil.delete(env.jobDir().toFile(), true);
        System.err.println("moeflow worker rank " + env.rank() + ": " + why + "; removed " + env.jobDir() + ", exiting");
        Runtime.getRuntime().halt(EXIT_ORPHANED);
    }

    @Override
    public synchronized void close() {
        closing = true;
        if (communicator != null) {
            communicator.close();
            communicator = null;
        }
        master.close();
    }

    /** Builds STEP lines (a few strings per report: at most five per second). */
    private static final class StepMetricsLine {
        Message of(final StepMetrics m) {
            return Message.of("STEP", "step", m.step, "loss", m.loss, "ce", m.crossEntropy, "lr", m.lr, "stage", m.stageName,
                "stageIndex", m.stageIndex, "tps", m.tokensPerSecond, "tokens", m.tokensConsumed, "samples", m.samplesConsumed);
        }
    }
}
