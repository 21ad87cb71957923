package io.moeflow.launcher.launch;

import java.io.BufferedReader;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.io.Writer;
import java.net.InetAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import java.util.regex.Pattern;

import org.agrona.IoUtil;

import io.moeflow.transport.IdleMode;
import io.moeflow.transport.aeron.AeronTransportConfig;
import io.moeflow.transport.aeron.JobMediaDriver;
import io.moeflow.transport.bench.JobDirectory;
import io.moeflow.transport.rdma.RdmaSupport;

/**
 * The node agent of one host: joins the rendezvous at the master, and for each generation the
 * master starts, runs this host's workers (one JVM per local rank, with the torchrun environment),
 * the host's Aeron IPC media driver and the host's job directory under /dev/shm. It reports each
 * worker's exit, stops its workers when told, and cleans up when the job ends or the master is
 * gone. On one host the launcher runs one agent in a thread; on a cluster (issue 10) each host runs
 * one, started locally, over ssh, by srun, or inside a network namespace.
 */
public final class NodeAgent implements Runnable {
    /** Directories of jobs live in shared memory: Aeron's log buffers are memory-mapped files. */
    public static final Path SHARED_MEMORY = Path.of("/dev/shm");
    /** Prefix of job directories ({@link JobDirectory#removeAbandoned} removes those of dead owners). */
    public static final String JOB_DIR_PREFIX = "moeflow-";
    private static final long POLL_NS = TimeUnit.MILLISECONDS.toNanos(100);
    /** Between attempts to reach a master that is not listening yet. */
    private static final long CONNECT_RETRY_MS = 500;
    /** Exit code of an agent that never joined the job (the master was unreachable or refused it). */
    public static final int EXIT_NOT_JOINED = 3;
    /** Exit code of an agent that lost its master (connection closed or heartbeats missed). */
    public static final int EXIT_MASTER_LOST = 4;
    /** Progress lines of a worker are not echoed: the launcher shows its own for the whole job. */
    private static final Pattern PROGRESS_LINE = Pattern.compile("^step \\d+/\\d+ \\(.*");
    /** Java 17 prints it at the start of every JVM with the Vector API: harmless, and N copies say nothing. */
    private static final String INCUBATOR_WARNING = "WARNING: Using incubator modules";

    /**
     * How this agent runs.
     *
     * @param masterAddr    where the rendezvous listens
     * @param masterPort    its port
     * @param node          this node's rank
     * @param nnodes        nodes in the job
     * @param nproc         workers on this node
     * @param joinKey       the job's join key
     * @param argsHash      the hash of this node's train options (the master checks it is node 0's)
     * @param java          the java executable for workers
     * @param jvmFlags      JVM flags for workers
     * @param classPath     the workers' class path
     * @param mainClass     the workers' main class
     * @param logDir        where {@code rank-<k>.log} go
     * @param echoRanks     ranks whose output is echoed to {@code console}, prefixed {@code [rank k]}
     * @param console       where echoed lines go
     * @param connectTimeoutNs how long to try to reach the master (retrying while it is not listening yet)
     * @param stopTimeoutNs how long workers get to exit after SIGTERM before SIGKILL
     * @param neverJoinRank test hook: this rank never joins (-1: none)
     * @param nodeAddr      the address this node's workers receive UDP and RDMA on ({@code --node-addr}); null: the local
     *                      address of this agent's connection to the master
     * @param transport     the {@code --transport} flag, passed to the workers
     */
    public record Config(String masterAddr, int masterPort, int node, int nnodes, int nproc, String joinKey, String argsHash, Path java,
                         List<String> jvmFlags,
                         String classPath, String mainClass, Path logDir, Set<Integer> echoRanks, PrintStream console,
                         long connectTimeoutNs, long stopTimeoutNs, int neverJoinRank, String nodeAddr, String transport) {
    }

    private final Config config;
    private final List<Process> workers = new ArrayList<>();
    private final List<Thread> pumps = new ArrayList<>();
    private final List<LogPump> logs = new ArrayList<>();
    private boolean[] reported = new boolean[0];
    private Path jobDir;
    private JobMediaDriver driver;
    private int generation = -1;
    private int worldSize;
    /** The job's transport failure bound, from the master: this node's media driver and its workers use it. */
    private long failureBoundNs = JobMediaDriver.DEFAULT_FAILURE_BOUND_NS;
    /** The job's UDP MTU, from the master: this node's workers use it towards other nodes. */
    private int udpMtuBytes = AeronTransportConfig.DEFAULT_UDP_MTU_BYTES;
    private String nodeAddr;
    private volatile boolean finished;
    /** The connection to the master while joined: the shutdown hook tells the master this node got a stop signal. */
    private volatile Connection masterConnection;
    /** Set by the shutdown hook: no new worker starts once the launcher is exiting. */
    private volatile boolean shuttingDown;
    private volatile String failure;
    private volatile boolean joined;
    /** The master's JOB answer. */
    private Message jobMessage;
    private volatile int endCode = -1;
    /** When the master was last heard from (any message). */
    private volatile long lastHeardNs;

    public NodeAgent(final Config config) {
        this.config = config;
    }

    /** Why the agent stopped early (could not join, lost the master), or null. */
    public String failure() {
        return failure;
    }

    /** Runs this agent on a thread of its own (node 0's agent, beside the master). */
    public AgentHandle startThread() {
        final Thread thread = new Thread(this, "moeflow-node-agent-" + config.node());
        thread.start();
        return new AgentHandle() {
            @Override
            public void await(final long timeoutNs) throws InterruptedException {
                thread.join(Math.max(1, TimeUnit.NANOSECONDS.toMillis(timeoutNs)));
            }

            @Override
            public String failure() {
                return failure;
            }
        };
    }

    /**
     * The exit code of a launcher that runs only this agent: the job's (from the master's END),
     * {@link #EXIT_NOT_JOINED} or {@link #EXIT_MASTER_LOST}.
     */
    public int exitCode() {
        if (endCode >= 0 && failure == null) {
            return endCode;
        }
        return joined ? EXIT_MASTER_LOST : EXIT_NOT_JOINED;
    }

    /**
     * This node's launcher got a stop signal (SIGTERM, Ctrl-C): the master is told first, so that it stops the whole job
     * after the current step (every rank saves) instead of taking this node's stop for its loss and waiting for a
     * replacement.
     */
    private void tellMasterStopping() {
        final Connection master = masterConnection;
        if (master == null || finished) {
            return;
        }
        try {
            master.send(Message.of("STOPPING", "node", config.node()));
        } catch (final IOException e) {
            // the master is gone: nothing to tell
        }
    }

    @Override
    public void run() {
        final Thread hook = new Thread(() -> {
            shuttingDown = true;
            tellMasterStopping();
            cleanUp(true);
        }, "moeflow-agent-cleanup");
        Runtime.getRuntime().addShutdownHook(hook);
        final long deadline = System.nanoTime() + config.connectTimeoutNs();
        try (Connection master = join(deadline)) {
            final Message job = jobMessage;
            joined = true;
            masterConnection = master;
            lastHeardNs = System.nanoTime();
            worldSize = job.getInt("world");
            udpMtuBytes = Integer.parseInt(job.get("udpMtu", Integer.toString(AeronTransportConfig.DEFAULT_UDP_MTU_BYTES)));
            failureBoundNs = TimeUnit.MILLISECONDS.toNanos(Long.parseLong(job.get("boundMs",
                Long.toString(TimeUnit.NANOSECONDS.toMillis(JobMediaDriver.DEFAULT_FAILURE_BOUND_NS)))));
            startHeartbeats(master, TimeUnit.MILLISECONDS.toNanos(Long.parseLong(job.get("beatMs", "1000"))));
            serve(master, job.get("run"));
        } catch (final EOFException e) {
            if (!finished && failure == null) {
                failure = "node agent " + config.node() + ": the master closed the connection (it ended, or declared this node lost); "
                    + "stopped this node's workers";
            }
        } catch (final IOException e) {
            if (failure == null) {
                failure = "node agent " + config.node() + ": " + e.getMessage();
            }
        } catch (final InterruptedException e) {
            Thread.currentThread().interrupt();
        } finally {
            cleanUp(false);
            try {
                Runtime.getRuntime().removeShutdownHook(hook);
            } catch (final IllegalStateException shuttingDown) {
                // the hook runs or ran
            }
        }
    }

    /**
     * Joins the master: says hello until it answers with the job ({@link #jobMessage}), retrying until {@code deadline}
     * while it is not listening yet or asks to retry (a replacement for a node it has not yet declared lost).
     */
    private Connection join(final long deadline) throws IOException, InterruptedException {
        boolean said = false;
        while (true) {
            final Connection master = connect(deadline);
            final Message answer;
            try {
                nodeAddr = config.nodeAddr() != null ? config.nodeAddr() : master.localAddress();
                master.send(Message.of("AGENT", "node", config.node(), "nnodes", config.nnodes(), "nproc", config.nproc(), "key",
                    config.joinKey(), "pid", ProcessHandle.current().pid(), "args", config.argsHash(), "host", hostName(),
                    "rdma", RdmaSupport.probe().toField()));
                answer = master.receive(Math.max(1, deadline - System.nanoTime())).orElseThrow(
                    () -> new IOException("the master did not answer within " + JobMaster.seconds(config.connectTimeoutNs())));
            } catch (final IOException e) {
                master.close();
                throw e;
            }
            if (answer.verb().equals("JOB")) {
                jobMessage = answer;
                return master;
            }
            master.close();
            final String reason = answer.get("reason", answer.toString());
            if (!answer.get("retry", "").equals("yes") || System.nanoTime() - deadline > 0) {
                throw new IOException("the master refused this agent: " + reason);
            }
            if (!said) {
                config.console().println("moeflow launch: node agent " + config.node() + ": " + reason + "; trying again until the join "
                    + "timeout");
                said = true;
            }
            Thread.sleep(CONNECT_RETRY_MS);
        }
    }

    /** Connects to the master, retrying while it is not listening yet (its node may start later), until {@code deadline}. */
    private Connection connect(final long deadline) throws IOException, InterruptedException {
        while (true) {
            try {
                return Connection.open(config.masterAddr(), config.masterPort(), Math.max(1, deadline - System.nanoTime()));
            } catch (final IOException e) {
                if (System.nanoTime() - deadline > 0) {
                    throw new IOException("could not reach the master at " + config.masterAddr() + ":" + config.masterPort() + " within "
                        + JobMaster.seconds(config.connectTimeoutNs()) + " (" + e.getMessage() + "); start node 0 (--node-rank 0) with the "
                        + "same --master-addr and --master-port, or check the address, the port and the firewall", e);
                }
                Thread.sleep(CONNECT_RETRY_MS);
            }
        }
    }

    /**
     * Beats the master every {@code intervalNs} on a thread of its own (starting workers or stopping them may hold the
     * agent's thread); when the master was silent for {@link LaunchPlan#MISSED_BEATS} beats, closes the connection, which
     * ends the agent and with it this node's workers.
     */
    private void startHeartbeats(final Connection master, final long intervalNs) {
        final Thread beats = new Thread(() -> {
            while (!finished && !master.isClosed()) {
                if (System.nanoTime() - lastHeardNs > LaunchPlan.MISSED_BEATS * intervalNs) {
                    failure = "node agent " + config.node() + ": the master at " + config.masterAddr() + ":" + config.masterPort()
                        + " stopped answering (" + LaunchPlan.MISSED_BEATS + " heartbeats of " + JobMaster.millis(intervalNs)
                        + " missed); stopped this node's workers";
                    master.close();
                    return;
                }
                try {
                    master.send(Message.of("HEARTBEAT"));
                    Thread.sleep(TimeUnit.NANOSECONDS.toMillis(intervalNs));
                } catch (final IOException | InterruptedException e) {
                    return;
                }
            }
        }, "moeflow-agent-heartbeat");
        beats.setDaemon(true);
        beats.start();
    }

    /** This host's name, for the master's messages. */
    static String hostName() {
        try {
            return InetAddress.getLocalHost().getHostName();
        } catch (final IOException e) {
            return System.getenv().getOrDefault("HOSTNAME", "unknown");
        }
    }

    private void serve(final Connection master, final String runId) throws IOException, InterruptedException {
        for (final Path abandoned : JobDirectory.removeAbandoned(SHARED_MEMORY, JOB_DIR_PREFIX)) {
            config.console().println("moeflow launch: removed " + abandoned + ": its job was killed before it could clean up");
        }
        jobDir = SHARED_MEMORY.resolve(JOB_DIR_PREFIX + runId + "-node" + config.node() + "-" + UUID.randomUUID().toString().substring(0, 8));
        Files.createDirectories(jobDir);
        Files.writeString(jobDir.resolve(JobDirectory.OWNER_FILE), Long.toString(ProcessHandle.current().pid()), StandardCharsets.US_ASCII);
        while (true) {
            final Optional<Message> received = master.receive(POLL_NS);
            if (received.isPresent()) {
                lastHeardNs = System.nanoTime();
                final Message m = received.get();
                switch (m.verb()) {
                    case "START" -> {
                        final int gen = m.getInt("gen");
                        if (gen <= generation) {
                            config.console().println("moeflow launch: node agent " + config.node() + ": ignored START of generation " + gen
                                + ": generation " + generation + " started already");
                        } else if (!Files.isDirectory(config.logDir())) {
                            generation = gen;
                            master.send(Message.of("EXIT", "gen", gen, "rank", config.node() * config.nproc(), "code", 2, "fatal", "yes",
                                "reason", "node " + config.node() + " (host " + hostName() + ") cannot see the run directory "
                                + config.logDir() + ": --runs-dir must be storage every node shares, at the same path"));
                        } else {
                            start(gen, JobMaster.splitArgs(m.get("args")), runId);
                        }
                    }
                    case "STOP" -> {
                        if (m.getInt("gen") == generation && m.get("graceful", "no").equals("yes")) {
                            // the launcher got a signal (and this agent none: it runs on another host): the workers finish
                            // their step and save, as on Ctrl-C; their exits are reported below
                            stopWorkers(true, false);
                        } else if (m.getInt("gen") == generation) {
                            stopWorkers(false);
                        }
                        master.send(Message.of("STOPPED", "gen", m.getInt("gen")));
                    }
                    case "HEARTBEAT" -> {
                        // heard: that is all
                    }
                    case "END" -> {
                        endCode = Integer.parseInt(m.get("code", "0"));
                        finished = true;
                        return;
                    }
                    default -> config.console().println("moeflow launch: node agent " + config.node() + ": ignored " + m.verb());
                }
            }
            reportExits(master);
        }
    }

    private synchronized void start(final int gen, final List<String> args, final String runId) throws IOException {
        stopWorkers(false);
        if (shuttingDown) {
            return;
        }
        generation = gen;
        final Path aeronDir = jobDir.resolve("aeron-g" + gen);
        driver = JobMediaDriver.launch(aeronDir.toString(), IdleMode.BACKOFF, failureBoundNs);
        reported = new boolean[config.nproc()];
        for (int local = 0; local < config.nproc(); local++) {
            final int rank = config.node() * config.nproc() + local;
            final List<String> command = new ArrayList<>();
            command.add(config.java().toString());
            command.addAll(config.jvmFlags());
            command.add("-cp");
            command.add(config.classPath());
            command.add(config.mainClass());
            command.addAll(args);
            final ProcessBuilder builder = new ProcessBuilder(command).redirectErrorStream(true);
            final Map<String, String> env = builder.environment();
            env.put(WorkerEnv.RANK, Integer.toString(rank));
            env.put(WorkerEnv.LOCAL_RANK, Integer.toString(local));
            env.put(WorkerEnv.WORLD_SIZE, Integer.toString(worldSize));
            env.put(WorkerEnv.LOCAL_WORLD_SIZE, Integer.toString(config.nproc()));
            env.put(WorkerEnv.GROUP_RANK, Integer.toString(config.node()));
            env.put(WorkerEnv.NODE_RANK, Integer.toString(config.node()));
            env.put(WorkerEnv.NODE_ADDR, nodeAddr);
            env.put(WorkerEnv.TRANSPORT, config.transport());
            env.put(WorkerEnv.MASTER_ADDR, config.masterAddr());
            env.put(WorkerEnv.MASTER_PORT, Integer.toString(config.masterPort()));
            env.put(WorkerEnv.RUN_ID, runId);
            env.put(WorkerEnv.GENERATION, Integer.toString(gen));
            env.put(WorkerEnv.UDP_MTU, Integer.toString(udpMtuBytes));
            env.put(WorkerEnv.FAILURE_BOUND_MS, Long.toString(TimeUnit.NANOSECONDS.toMillis(failureBoundNs)));
            env.put(WorkerEnv.JOB_DIR, jobDir.toString());
            env.put(WorkerEnv.AERON_DIR, driver.aeronDirectory());
            env.put(WorkerEnv.AGENT_PID, Long.toString(ProcessHandle.current().pid()));
            // longer than the master's own join timeout: when ranks are missing, the master reports it and stops this worker
            env.put(WorkerEnv.JOIN_TIMEOUT_S, Long.toString(TimeUnit.NANOSECONDS.toSeconds(config.connectTimeoutNs()) + 60));
            env.put(JoinKey.ENV, config.joinKey());
            env.remove(WorkerEnv.TEST_NEVER_JOIN);
            if (rank == config.neverJoinRank()) {
                env.put(WorkerEnv.TEST_NEVER_JOIN, "1");
            }
            final Process process;
            try {
                process = builder.start();
            } catch (final IOException e) {
                throw new IOException("cannot start the worker JVM of rank " + rank + " with " + config.java() + ": " + e.getMessage(), e);
            }
            workers.add(process);
            final LogPump pump = new LogPump(rank, gen, process, config.logDir().resolve("rank-" + rank + ".log"),
                config.echoRanks().contains(rank) ? config.console() : null);
            logs.add(pump);
            final Thread thread = new Thread(pump, "moeflow-rank-" + rank + "-output");
            thread.setDaemon(true);
            thread.start();
            pumps.add(thread);
        }
    }

    private synchronized void reportExits(final Connection master) throws IOException, InterruptedException {
        for (int i = 0; i < workers.size(); i++) {
            final Process p = workers.get(i);
            if (!reported[i] && !p.isAlive()) {
                reported[i] = true;
                pumps.get(i).join(TimeUnit.SECONDS.toMillis(2)); // the last lines, for the reason
                final int code = p.exitValue();
                master.send(Message.of("EXIT", "gen", generation, "rank", logs.get(i).rank, "code", code,
                    "reason", reason(code, logs.get(i).lastLine())));
            }
        }
    }

    /** "exit code 3: moeflow train: ..." or "killed by SIGKILL (exit code 137)". */
    static String reason(final int code, final String lastLine) {
        if (code > 128 && code < 160) {
            return "killed by " + signalName(code - 128) + " (exit code " + code + ")"; // its last line says nothing about it
        }
        return lastLine == null || lastLine.isBlank() ? "exit code " + code : "exit code " + code + ": " + lastLine.strip();
    }

    private static String signalName(final int signal) {
        return switch (signal) {
            case 9 -> "SIGKILL";
            case 15 -> "SIGTERM";
            case 6 -> "SIGABRT";
            case 11 -> "SIGSEGV";
            case 2 -> "SIGINT";
            default -> "signal " + signal;
        };
    }

    /**
     * Stops every worker: SIGTERM first when {@code gracefully} (a worker then finishes its step and
     * saves), SIGKILL at once otherwise or after the stop timeout; then the generation's media driver.
     */
    private synchronized void stopWorkers(final boolean gracefully) {
        stopWorkers(gracefully, true);
    }

    /**
     * @param forget drop the stopped workers from the lists; the shutdown hook keeps them, so that the agent's
     *               thread still reports their exits and the master ends the job knowing how it ended
     */
    private synchronized void stopWorkers(final boolean gracefully, final boolean forget) {
        if (gracefully) {
            // SIGTERM through the handle: Process.destroy() would also close the pipe and lose the worker's last lines
            workers.forEach(p -> p.toHandle().destroy());
            final long deadline = System.nanoTime() + config.stopTimeoutNs();
            for (final Process p : workers) {
                try {
                    p.waitFor(Math.max(0, deadline - System.nanoTime()), TimeUnit.NANOSECONDS);
                } catch (final InterruptedException e) {
                    Thread.currentThread().interrupt();
                    break;
                }
            }
        }
        for (final Process p : workers) {
            p.descendants().forEach(ProcessHandle::destroyForcibly);
            p.toHandle().destroyForcibly(); // through the handle: the pump reads the pipe to its end
        }
        for (final Process p : workers) {
            try {
                p.waitFor(config.stopTimeoutNs(), TimeUnit.NANOSECONDS);
            } catch (final InterruptedException e) {
                Thread.currentThread().interrupt();
                break;
            }
        }
        for (final Thread pump : pumps) {
            try {
                pump.join(TimeUnit.SECONDS.toMillis(2));
            } catch (final InterruptedException e) {
                Thread.currentThread().interrupt();
                break;
            }
        }
        if (forget) {
            workers.clear();
            pumps.clear();
            logs.clear();
        }
        if (driver != null) {
            driver.close();
            driver = null;
        }
    }

    private synchronized void cleanUp(final boolean gracefully) {
        stopWorkers(gracefully, !gracefully);
        if (jobDir != null) {
            IoUtil.delete(jobDir.toFile(), true);
            if (Files.exists(jobDir)) {
                config.console().println("moeflow launch: could not delete all of " + jobDir);
            }
            jobDir = null;
        }
    }

    /** Copies one worker's output to its log file and, if asked, to the console with a {@code [rank k]} prefix. */
    private static final class LogPump implements Runnable {
        private final int rank;
        private final int generation;
        private final Process process;
        private final Path log;
        private final PrintStream echo;
        private volatile String lastLine;

        LogPump(final int rank, final int generation, final Process process, final Path log, final PrintStream echo) {
            this.rank = rank;
            this.generation = generation;
            this.process = process;
            this.log = log;
            this.echo = echo;
        }

        String lastLine() {
            return lastLine;
        }

        @Override
        public void run() {
            try (BufferedReader in = new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8));
                 Writer file = Files.newBufferedWriter(log, StandardCharsets.UTF_8, StandardOpenOption.CREATE, StandardOpenOption.APPEND)) {
                if (generation > 0) {
                    file.write("--- restart: generation " + generation + " ---\n");
                }
                String line;
                while ((line = in.readLine()) != null) {
                    file.write(line);
                    file.write('\n');
                    file.flush();
                    if (!line.isBlank() && !line.startsWith(INCUBATOR_WARNING)) {
                        lastLine = line;
                    }
                    if (echo != null && !PROGRESS_LINE.matcher(line).matches() && !line.startsWith(INCUBATOR_WARNING)) {
                        echo.println("[rank " + rank + "] " + line);
                    }
                }
            } catch (final IOException e) {
                if (echo != null) {
                    echo.println("moeflow launch: output of rank " + rank + ": " + e.getMessage());
                }
            } catch (final UncheckedIOException e) {
                // the worker is gone
            }
        }
    }
}
