package io.moeflow.launcher;

import java.io.File;
import java.io.IOException;
import java.io.PrintStream;
import java.net.DatagramSocket;
import java.net.InetAddress;
import java.net.NetworkInterface;
import java.net.SocketException;
import java.net.UnknownHostException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;

import io.moeflow.checkpoint.CheckpointStore;
import io.moeflow.launcher.cluster.ClusterDefaults;
import io.moeflow.launcher.cluster.HostFile;
import io.moeflow.launcher.cluster.SlurmEnvironment;
import io.moeflow.launcher.launch.AgentHandle;
import io.moeflow.launcher.launch.JobMaster;
import io.moeflow.launcher.launch.JoinKey;
import io.moeflow.launcher.launch.LaunchPlan;
import io.moeflow.launcher.launch.Message;
import io.moeflow.launcher.launch.NodeAgent;
import io.moeflow.launcher.launch.RemoteAgents;
import io.moeflow.launcher.launch.RendezvousServer;
import io.moeflow.launcher.launch.SshAgentStarter;
import io.moeflow.launcher.report.TrainingProgress;
import io.moeflow.trainer.StepMetrics;
import io.moeflow.transport.TransportException;
import io.moeflow.transport.bench.WorkerProcesses;
import io.moeflow.transport.rdma.RdmaSupport;
import io.moeflow.transport.rdma.TransportChoice;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/**
 * {@code moeflow launch --nproc-per-node N train ...}: one training job over N worker JVMs per node,
 * torchrun-style. On one host (or node rank 0 of a static multi-node launch) the launcher is the
 * job's master (it hosts the rendezvous and decides restarts) and runs this host's node agent in a
 * thread; the agent starts the workers. On node rank R &gt; 0 it runs only that node's agent, which
 * joins the master at {@code --master-addr:--master-port}.
 *
 * <p>The steps are small methods so that other ways to start a job reuse them: {@link #checkOptions},
 * {@link #validateTrainArgs}, {@link #joinKey}, {@link #makePlan}, {@link #runMaster} and {@link #agentConfig}.
 */
@Command(name = "launch", mixinStandardHelpOptions = true, sortOptions = false, usageHelpAutoWidth = true,
    description = {"Train one model with several worker JVMs per node (data and expert parallel), like torchrun.",
        "One host: moeflow launch --nproc-per-node N train ...; several: the same on every node, with --nnodes M --node-rank R "
            + "--master-addr HOST-OF-NODE-0 and the job's key in MOEFLOW_JOIN_KEY (make it with openssl rand -hex 32); or, from one "
            + "host, --hostfile FILE to start them over ssh. Under srun (Slurm) or in a Kubernetes Indexed Job the node options come "
            + "from the environment (see docs/launch.md).",
        "The train options mean what they mean for moeflow train; the global batch (--batch-size) is the same whatever N.",
        "Each worker's output goes to runs/<name>/rank-<k>.log; rank 0's is echoed, prefixed [rank 0]."})
public final class LaunchCommand implements Callable<Integer> {
    /** Exit code of bad launch options. */
    static final int EXIT_BAD_INPUT = 2;
    /** The master's port of a multi-node job when none is given (torchrun's). */
    static final int DEFAULT_MULTI_NODE_PORT = 29500;

    @Option(names = "--nnodes", paramLabel = "M", defaultValue = "1",
        description = "Nodes (node agents) in the job. Default: ${DEFAULT-VALUE}")
    int nnodes;

    @Option(names = "--node-rank", paramLabel = "R", defaultValue = "0",
        description = "This node's rank in [0, M): node 0 runs the master beside its agent, the others only their agent. "
            + "Default: ${DEFAULT-VALUE}")
    int nodeRank;

    @Option(names = "--nproc-per-node", paramLabel = "N", defaultValue = "1",
        description = "Worker JVMs (ranks) on each node. Default: ${DEFAULT-VALUE}")
    int nprocPerNode;

    @Option(names = "--max-restarts", paramLabel = "K", defaultValue = "0",
        description = "Restarts of the whole group after a worker or a node fails, for the whole job; each restart resumes from the "
            + "newest complete checkpoint. Default: ${DEFAULT-VALUE}")
    int maxRestarts;

    @Option(names = "--master-addr", paramLabel = "ADDR", defaultValue = "127.0.0.1",
        description = "Address of the rendezvous (node 0 listens there; the workers' MASTER_ADDR). Default: ${DEFAULT-VALUE}")
    String masterAddr;

    @Option(names = "--master-port", paramLabel = "PORT",
        description = "TCP port of the rendezvous (MASTER_PORT). Default: any free port on one node, " + DEFAULT_MULTI_NODE_PORT
            + " with --nnodes > 1")
    Integer masterPort;

    @Option(names = "--join-key-file", paramLabel = "FILE",
        description = "File (mode 600) holding the job's join key, or - to read it from standard input; else the MOEFLOW_JOIN_KEY "
            + "environment variable. Needed with --nnodes > 1. Make one with: openssl rand -hex 32")
    String joinKeyFile;

    @Option(names = "--join-timeout", paramLabel = "SECONDS", defaultValue = "120",
        description = "How long the node agents, then the workers of each (re)start, have to join the rendezvous; also how long a "
            + "lost node has to be replaced. Default: ${DEFAULT-VALUE}")
    long joinTimeoutSeconds;

    @Option(names = "--stop-timeout", paramLabel = "SECONDS", defaultValue = "30",
        description = "How long workers have to stop (Ctrl-C: finish the step and save) before they are killed. "
            + "Default: ${DEFAULT-VALUE}")
    long stopTimeoutSeconds;

    @Option(names = "--heartbeat-interval", paramLabel = "SECONDS", defaultValue = "1",
        description = "Master and node agents beat each other this often; a node that misses " + LaunchPlan.MISSED_BEATS
            + " beats is lost. Default: ${DEFAULT-VALUE}")
    double heartbeatIntervalSeconds;

    @Option(names = "--failure-bound", paramLabel = "SECONDS", defaultValue = "2",
        description = "When a rank dies, every other rank notices within about this long (the transport's liveness timeouts are "
            + "tuned to it); raise it on heavily loaded hosts where a busy rank would be taken for a dead one. Set on node 0 "
            + "(the master gives it to every node). Default: ${DEFAULT-VALUE}")
    double failureBoundSeconds;

    @Option(names = "--udp-mtu", paramLabel = "BYTES", defaultValue = "1408",
        description = "Largest UDP frame between nodes, headers included (a multiple of 32 in [1024, 65504]): 1408 fits a standard "
            + "1500-byte Ethernet frame; with jumbo frames (MTU 9000) give 8960. Set on node 0 (the master gives it to every node). "
            + "Default: ${DEFAULT-VALUE}")
    int udpMtuBytes;

    @Option(names = "--echo", paramLabel = "RANKS", defaultValue = "0",
        description = "Ranks whose output is echoed with a [rank k] prefix (by the node running them): a list (0,1), 'all' or 'none'. "
            + "Default: ${DEFAULT-VALUE}")
    String echo;

    @Option(names = "--transport", paramLabel = "KIND", defaultValue = "auto",
        description = "How ranks exchange data: auto (RDMA if every node has it, else IPC within a node and UDP across nodes), "
            + "ipc (one node), udp (every pair over UDP, even on one host) or rdma (fails at start where a node lacks it). "
            + "Default: ${DEFAULT-VALUE}")
    String transport;

    @Option(names = "--node-addr", paramLabel = "ADDR",
        description = "Address of this node that its workers receive UDP and RDMA on (the other nodes must reach it; for RDMA the "
            + "address of the RDMA interface). Default: the local address of this node's connection to the master")
    String nodeAddr;

    @Option(names = "--hostfile", paramLabel = "FILE",
        description = "Start one node agent per line of FILE ('host slots=N', as for DeepSpeed, Horovod, OpenMPI) with --ssh-command; "
            + "this launcher runs only the master. The first line is node 0; --nproc-per-node defaults to the hosts' slots.")
    Path hostfile;

    @Option(names = "--ssh-command", paramLabel = "CMD", defaultValue = SshAgentStarter.DEFAULT_COMMAND,
        description = "How --hostfile reaches a host, split at spaces; it must log in without a prompt. Default: ${DEFAULT-VALUE}")
    String sshCommand;

    @Option(names = "--java", paramLabel = "PATH",
        description = "Java executable of the workers. Default: the one running this launcher")
    Path java;

    /** Node 0's agent without the master (which runs elsewhere: the launcher of a --hostfile job starts agents so). */
    @Option(names = "--agent-only", hidden = true)
    boolean agentOnly;

    /** Test hook: this rank's worker never joins the rendezvous. */
    @Option(names = "--test-never-join", hidden = true, defaultValue = "-1")
    int testNeverJoin;

    @Parameters(index = "0", paramLabel = "train", description = "The command each worker runs: train.")
    String command;

    @Parameters(index = "1..*", paramLabel = "TRAIN-OPTIONS", description = "Options of moeflow train (see moeflow train --help).")
    List<String> trainArgs = new ArrayList<>();

    @Spec
    CommandSpec spec;

    /** Bad launch input: one line, exit code 2, nothing started. */
    static final class BadLaunchInput extends Exception {
        private static final long serialVersionUID = 1L;

        BadLaunchInput(final String message) {
            super(message);
        }
    }

    /**
     * The train options, checked with the train command's own parser.
     *
     * @param train      the parsed options
     * @param parsedArgs {@code train} and the options as given
     * @param argsHash   a hash of the resolved options: every node of a job must show the same
     */
    record TrainJob(TrainCommand train, List<String> parsedArgs, String argsHash) {
    }

    @Override
    public Integer call() throws InterruptedException {
        try {
            if (hostfile != null) {
                return runHostfile();
            }
            applyClusterDefaults(System.getenv());
            checkOptions();
            final Path javaExecutable = javaExecutable();
            final Set<Integer> echoRanks = echoRanks(echo, worldSize());
            final TrainJob job = validateTrainArgs();
            final String joinKey = joinKey();
            return nodeRank == 0 && !agentOnly ? runNodeZero(job, joinKey, javaExecutable, echoRanks)
                : runAgentOnly(job, joinKey, javaExecutable, echoRanks);
        } catch (final BadLaunchInput e) {
            return fail(e.getMessage());
        } catch (final IllegalArgumentException e) {
            return fail(e.getMessage()); // from echoRanks and the run directory's checks: messages of bad input
        }
    }

    /** Whether {@code option} was given on the command line (not a default). */
    private boolean given(final String option) {
        return spec != null && spec.commandLine().getParseResult() != null && spec.commandLine().getParseResult().hasMatchedOption(option);
    }

    /**
     * Under Slurm (a task of srun) or in a Kubernetes Indexed Job: fills --nnodes, --node-rank, --master-addr,
     * --master-port and the train option --run-name from the environment where they were not given, and says so.
     */
    void applyClusterDefaults(final Map<String, String> env) throws BadLaunchInput {
        final Optional<ClusterDefaults> detected;
        try {
            detected = ClusterDefaults.detect(env, given("--nnodes") ? nnodes : null, given("--master-addr") ? masterAddr : null);
        } catch (final IllegalArgumentException e) {
            throw new BadLaunchInput(e.getMessage());
        }
        SlurmEnvironment.outsideStepNote(env).ifPresent(note -> System.out.println("moeflow launch: " + note));
        if (detected.isEmpty()) {
            return;
        }
        final ClusterDefaults d = detected.get();
        final List<String> taken = new ArrayList<>();
        if (!given("--nnodes")) {
            nnodes = d.nnodes();
            taken.add("--nnodes " + nnodes);
        }
        if (!given("--node-rank")) {
            nodeRank = d.nodeRank();
            taken.add("--node-rank " + nodeRank);
        }
        if (!given("--master-addr")) {
            masterAddr = d.masterAddr();
            taken.add("--master-addr " + masterAddr);
        }
        if (!given("--master-port")) {
            masterPort = d.masterPort();
            taken.add("--master-port " + masterPort);
        }
        if (d.runName() != null && addRunNameIfNone(d.runName())) {
            taken.add("--run-name " + d.runName());
        }
        System.out.println("moeflow launch: detected " + d.detected() + "; using " + (taken.isEmpty() ? "only the flags given"
            : String.join(" ", taken) + " (flags given on the command line win)"));
        if (nnodes > 1 && joinKeyFile == null && (env.get(JoinKey.ENV) == null || env.get(JoinKey.ENV).isBlank())) {
            throw new BadLaunchInput(d.detected().split(":")[0] + ": no join key in " + JoinKey.ENV + "; every node needs the same one: "
                + (d.detected().startsWith("Slurm") ? "export " + JoinKey.ENV + "=$(" + JoinKey.HOW_TO_MAKE + ") in the batch script "
                    + "before srun (see docs/examples/moeflow.sbatch)" : "put it in a Secret and give it to every pod as " + JoinKey.ENV
                    + " (see docs/examples/kubernetes/moeflow-job.yaml)"));
        }
    }

    /** Appends --run-name NAME to the train options when they name no run (and resume none); true when it did. */
    private boolean addRunNameIfNone(final String name) throws BadLaunchInput {
        final TrainCommand train = parseTrainArgs().getCommand();
        if (train.runName != null || (train.resume != null && !train.resume.equals(CheckpointStore.AUTO))) {
            return false;
        }
        trainArgs.addAll(List.of("--run-name", name));
        return true;
    }

    /**
     * {@code --hostfile}: this launcher runs the master only and starts one agent per host over ssh, each with the
     * static form of this command and the join key on its standard input.
     */
    private int runHostfile() throws BadLaunchInput, InterruptedException {
        if (given("--node-rank")) {
            throw new BadLaunchInput("--node-rank with --hostfile: the launcher starts every node's agent itself; drop --node-rank");
        }
        if (given("--node-addr")) {
            throw new BadLaunchInput("--node-addr with --hostfile: each node's agent finds its own address; drop --node-addr");
        }
        final HostFile hosts;
        final List<String> ssh;
        try {
            hosts = HostFile.read(hostfile);
            nprocPerNode = hosts.nprocPerNode(given("--nproc-per-node") ? nprocPerNode : null);
            ssh = SshAgentStarter.parseCommand(sshCommand);
        } catch (final IllegalArgumentException e) {
            throw new BadLaunchInput(e.getMessage());
        }
        if (given("--nnodes") && nnodes != hosts.hosts().size()) {
            throw new BadLaunchInput("--nnodes " + nnodes + " with --hostfile " + hostfile + " of " + hosts.hosts().size() + " hosts: "
                + "drop --nnodes (one node per host)");
        }
        nnodes = hosts.hosts().size();
        if (!given("--master-port")) {
            masterPort = 0; // the launcher tells its agents the port it got
        }
        if (!given("--master-addr")) {
            masterAddr = addressTowards(hosts.hosts().get(0).name());
        }
        addRunNameIfNone(RunDirectory.timestampedName("run-"));
        checkOptions();
        final Path javaExecutable = javaExecutable();
        echoRanks(echo, worldSize());
        final TrainJob job = validateTrainArgs();
        final String joinKey;
        try {
            joinKey = JoinKey.read(joinKeyFile, System.getenv(), System.in).orElseGet(JoinKey::generate);
        } catch (final IllegalArgumentException e) {
            throw new BadLaunchInput(e.getMessage());
        }
        final RendezvousServer server = bindServer(joinKey);
        try (server) {
            final Path runDir = createRunDirectory(job.train());
            final LaunchPlan plan = makePlan(job, runDir, workerThreads(job.train()));
            final List<String> names = hosts.hosts().stream().map(HostFile.Host::name).toList();
            System.out.printf("moeflow launch: run %s, %d nodes of %d worker JVMs (ranks 0-%d) started over %s from %s; master at %s:%d; "
                + "logs in %s/rank-<k>.log%n", runDir, nnodes, nprocPerNode, worldSize() - 1, ssh.get(0), hostfile, masterAddr,
                server.port(), runDir);
            final Path workDir = Path.of("").toAbsolutePath();
            try (RemoteAgents agents = new RemoteAgents(new SshAgentStarter(ssh, names),
                node -> agentCommand(javaExecutable, node, server.port()), workDir, joinKey, System.out,
                TimeUnit.SECONDS.toNanos(stopTimeoutSeconds))) {
                try {
                    agents.startAll(nnodes);
                } catch (final IOException e) {
                    throw new BadLaunchInput("--ssh-command " + sshCommand + ": cannot start it: " + e.getMessage());
                }
                return runMaster(plan, server, agents.handles(), agents::attach);
            }
        }
    }

    /**
     * The command that runs node {@code node}'s agent: this launcher's JVM, flags and class path (the same paths on every
     * node), the static multi-node form of this launch, the join key read from standard input.
     */
    List<String> agentCommand(final Path javaExecutable, final int node, final int port) {
        final List<String> launch = new ArrayList<>(List.of("launch", "--nnodes", Integer.toString(nnodes), "--node-rank",
            Integer.toString(node), "--agent-only", "--master-addr", masterAddr, "--master-port", Integer.toString(port), "--nproc-per-node",
            Integer.toString(nprocPerNode), "--join-key-file", "-", "--join-timeout", Long.toString(joinTimeoutSeconds),
            "--stop-timeout", Long.toString(stopTimeoutSeconds), "--heartbeat-interval", Double.toString(heartbeatIntervalSeconds),
            "--failure-bound", Double.toString(failureBoundSeconds), "--udp-mtu", Integer.toString(udpMtuBytes),
            "--echo", echo, "--transport", transport, "--java", javaExecutable.toString(), "train"));
        launch.addAll(trainArgs);
        return WorkerProcesses.javaCommand(WorkerProcesses.inheritedJvmFlags(), Main.class.getName(), launch);
    }

    /** This host's address on the route to {@code host} (what its agent will reach the master at). */
    static String addressTowards(final String host) throws BadLaunchInput {
        final String name = host.substring(host.indexOf('@') + 1);
        try (DatagramSocket probe = new DatagramSocket()) {
            probe.connect(InetAddress.getByName(name), 22); // no packet is sent: this only asks the kernel for the route
            final InetAddress local = probe.getLocalAddress();
            if (local == null || local.isAnyLocalAddress()) {
                throw new BadLaunchInput("--hostfile: no route from this host to " + name + "; give --master-addr (an address of this "
                    + "host the nodes reach)");
            }
            return local.getHostAddress();
        } catch (final IOException e) {
            throw new BadLaunchInput("--hostfile: cannot find this host's address towards " + name + " (" + e.getMessage() + "); give "
                + "--master-addr (an address of this host the nodes reach)");
        }
    }

    /** Ranks in the job. */
    int worldSize() {
        return nnodes * nprocPerNode;
    }

    /** The rendezvous port: as given, else any free one on one node, else torchrun's. */
    int masterPort() {
        return masterPort != null ? masterPort : nnodes > 1 ? DEFAULT_MULTI_NODE_PORT : 0;
    }

    /** Checks the launcher's own options (not the train options). */
    void checkOptions() throws BadLaunchInput {
        if (!"train".equals(command)) {
            throw new BadLaunchInput("'" + command + "': launch runs train only: moeflow launch --nproc-per-node 2 train [train options]");
        }
        if (nprocPerNode < 1 || nprocPerNode > 64) {
            throw new BadLaunchInput("--nproc-per-node " + nprocPerNode + ": must be in [1, 64]");
        }
        if (nnodes < 1 || nnodes > 4096) {
            throw new BadLaunchInput("--nnodes " + nnodes + ": must be in [1, 4096]");
        }
        if (nodeRank < 0 || nodeRank >= nnodes) {
            throw new BadLaunchInput("--node-rank " + nodeRank + " with --nnodes " + nnodes + ": must be in [0, " + nnodes + ")");
        }
        if (joinTimeoutSeconds < 1 || stopTimeoutSeconds < 1) {
            throw new BadLaunchInput("--join-timeout " + joinTimeoutSeconds + " --stop-timeout " + stopTimeoutSeconds
                + ": must be >= 1 second");
        }
        if (!(failureBoundSeconds >= 0.2 && failureBoundSeconds <= 600)) {
            throw new BadLaunchInput("--failure-bound " + failureBoundSeconds + ": must be in [0.2, 600] seconds");
        }
        if (udpMtuBytes % 32 != 0 || udpMtuBytes < 1024 || udpMtuBytes > 65504) {
            throw new BadLaunchInput("--udp-mtu " + udpMtuBytes + ": must be a multiple of 32 in [1024, 65504] (1408 for a 1500-byte "
                + "Ethernet MTU, 8960 for jumbo frames)");
        }
        if (!(heartbeatIntervalSeconds >= 0.05 && heartbeatIntervalSeconds <= 600)) {
            throw new BadLaunchInput("--heartbeat-interval " + heartbeatIntervalSeconds + ": must be in [0.05, 600] seconds");
        }
        if (masterPort() < 0 || masterPort() > 65535) {
            throw new BadLaunchInput("--master-port " + masterPort() + ": must be in [0, 65535]");
        }
        if ((nodeRank > 0 || agentOnly) && masterPort() == 0) {
            throw new BadLaunchInput("--master-port 0 with --node-rank " + nodeRank + ": give the port node 0's master listens on");
        }
        try {
            transport = TransportChoice.checkFlag(transport);
            nodeAddr = nodeAddr == null ? null : checkNodeAddr(nodeAddr);
            // One node: its agent runs in this process, so this host's probe is the node's, and a transport that cannot run
            // here fails now, before a run directory exists. Across nodes the master decides once every agent reported.
            if (nnodes == 1 && transport.equals("rdma")) {
                TransportChoice.resolve(transport, nprocPerNode, List.of(new TransportChoice.NodeRdma("node 0 (this host)",
                    RdmaSupport.probe())));
            }
        } catch (final IllegalArgumentException | TransportException e) {
            throw new BadLaunchInput(e.getMessage());
        }
    }

    /**
     * The {@code --node-addr} value as an IP literal, if it is an address of this host.
     *
     * @throws IllegalArgumentException naming the value and what to give instead
     */
    static String checkNodeAddr(final String addr) {
        final InetAddress address;
        try {
            address = InetAddress.getByName(addr);
        } catch (final UnknownHostException e) {
            throw new IllegalArgumentException("--node-addr " + addr + ": unknown host; give an IP address of this host that the "
                + "other nodes reach", e);
        }
        if (address.isAnyLocalAddress()) {
            throw new IllegalArgumentException("--node-addr " + addr + ": a wildcard address; give the IP address of this host that "
                + "the other nodes reach");
        }
        try {
            if (!address.isLoopbackAddress() && NetworkInterface.getByInetAddress(address) == null) {
                throw new IllegalArgumentException("--node-addr " + addr + ": not an address of this host (see ip -br addr); give "
                    + "the IP address of this host that the other nodes reach");
            }
        } catch (final SocketException e) {
            throw new IllegalArgumentException("--node-addr " + addr + ": cannot list this host's interfaces: " + e.getMessage(), e);
        }
        return address.getHostAddress();
    }

    private Path javaExecutable() throws BadLaunchInput {
        final Path javaExecutable = java != null ? java : Path.of(System.getProperty("java.home"), "bin", "java");
        if (!Files.isRegularFile(javaExecutable) || !Files.isExecutable(javaExecutable)) {
            throw new BadLaunchInput("--java " + javaExecutable + ": no such executable; install Java 17 or give the path of its bin/java");
        }
        return javaExecutable;
    }

    /** The train options parsed with the train command's own parser (a --config file's defaults included). */
    private CommandLine parseTrainArgs() throws BadLaunchInput {
        final CommandLine trainCli = new CommandLine(new TrainCommand());
        trainCli.setOverwrittenOptionsAllowed(true);
        trainCli.setCaseInsensitiveEnumValuesAllowed(true);
        final List<String> parsedArgs = new ArrayList<>(List.of("train"));
        parsedArgs.addAll(trainArgs);
        final File config = Main.configFile(parsedArgs.toArray(new String[0]));
        if (config != null) {
            if (!config.isFile()) {
                throw new BadLaunchInput("--config " + config + ": no such file; give the path of a .properties file");
            }
            trainCli.setDefaultValueProvider(new CommandLine.PropertiesDefaultProvider(config));
        }
        try {
            trainCli.parseArgs(trainArgs.toArray(new String[0]));
        } catch (final CommandLine.ParameterException | IllegalArgumentException e) {
            throw new BadLaunchInput("train options: " + e.getMessage());
        }
        return trainCli;
    }

    /** Checks the train options here, on every node, before any JVM starts, with the train command's own parser. */
    TrainJob validateTrainArgs() throws BadLaunchInput {
        final CommandLine trainCli = parseTrainArgs();
        final TrainCommand train = trainCli.getCommand();
        final List<String> parsedArgs = new ArrayList<>(List.of("train"));
        parsedArgs.addAll(trainArgs);
        try {
            train.model.toConfig();
            train.optimizer.toConfig();
            train.curriculum.toConfig(train.steps);
        } catch (final IllegalArgumentException e) {
            throw new BadLaunchInput("train options: " + e.getMessage());
        }
        if (trainCli.isUsageHelpRequested() || trainCli.isVersionHelpRequested()) {
            throw new BadLaunchInput("train options: --help: run moeflow train --help for the train options");
        }
        final int world = worldSize();
        if (train.batchSize % world != 0) {
            throw new BadLaunchInput("--batch-size " + train.batchSize + " with " + (nnodes > 1 ? nnodes + " nodes of " : "")
                + "--nproc-per-node " + nprocPerNode + ": the global batch must split evenly over the ranks; give a multiple of " + world);
        }
        try {
            train.parallel.toConfig(world, 0).checkFits(train.model.toConfig().experts(), train.batchSize);
        } catch (final IllegalArgumentException e) {
            throw new BadLaunchInput("train options: " + e.getMessage());
        }
        if (nnodes > 1 && train.runName == null && (train.resume == null || train.resume.equals(CheckpointStore.AUTO))) {
            throw new BadLaunchInput("--nnodes " + nnodes + ": a multi-node job needs an explicit --run-name so that every node names "
                + "the same run; add --run-name NAME to the train options of every node");
        }
        return new TrainJob(train, parsedArgs, hash(ResolvedOptions.text(ResolvedOptions.of(trainCli.getCommandSpec()), "train")));
    }

    /** The first 16 hex characters of the SHA-256 of {@code text}. */
    static String hash(final String text) {
        try {
            final byte[] digest = MessageDigest.getInstance("SHA-256").digest(text.getBytes(StandardCharsets.UTF_8));
            return HexFormat.of().formatHex(digest, 0, 8);
        } catch (final NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is part of every Java 17", e);
        }
    }

    /** The job's join key: given (file, stdin or environment), needed with several nodes; generated on one. */
    String joinKey() throws BadLaunchInput {
        final Optional<String> given;
        try {
            given = JoinKey.read(joinKeyFile, System.getenv(), System.in);
        } catch (final IllegalArgumentException e) {
            throw new BadLaunchInput(e.getMessage());
        }
        if (given.isEmpty() && nnodes > 1) {
            throw new BadLaunchInput("--nnodes " + nnodes + ": a multi-node job needs its join key on every node: make one with "
                + JoinKey.HOW_TO_MAKE + " and give it in the " + JoinKey.ENV + " environment variable or with --join-key-file FILE "
                + "(mode 600, or - for standard input); never on the command line");
        }
        return given.orElseGet(JoinKey::generate);
    }

    /** Node 0 (and one host): the master, with this node's agent in a thread. */
    private int runNodeZero(final TrainJob job, final String joinKey, final Path javaExecutable, final Set<Integer> echoRanks)
        throws BadLaunchInput, InterruptedException {
        // The rendezvous port first: a busy port must not leave a new, empty run directory behind (the same command
        // with another port would then be refused as "already exists").
        final RendezvousServer server = bindServer(joinKey);
        try (server) {
            final Path runDir = createRunDirectory(job.train());
            final int threads = workerThreads(job.train());
            final LaunchPlan plan = makePlan(job, runDir, threads);
            System.out.printf("moeflow launch: run %s, %d worker JVMs %s (ranks 0-%d), %d compute thread%s each, rendezvous at "
                    + "%s:%d; logs in %s/rank-<k>.log%n", runDir, nprocPerNode, nnodes == 1 ? "on this host" : "on each of " + nnodes
                    + " nodes", worldSize() - 1, threads, threads == 1 ? "" : "s", masterAddr, server.port(), runDir);
            final AgentHandle agent = new NodeAgent(agentConfig(0, server.port(), joinKey, job, runDir, javaExecutable, echoRanks))
                .startThread();
            return runMaster(plan, server, List.of(agent), m -> { });
        }
    }

    /** Node R &gt; 0: only this node's agent, joined to the master of node 0. */
    private int runAgentOnly(final TrainJob job, final String joinKey, final Path javaExecutable, final Set<Integer> echoRanks)
        throws BadLaunchInput {
        final Path runDir = sharedRunDirectory(job.train());
        System.out.printf("moeflow launch: node %d of %d: %d worker JVMs (ranks %d-%d) of run %s; joining the master at %s:%d%n",
            nodeRank, nnodes, nprocPerNode, nodeRank * nprocPerNode, nodeRank * nprocPerNode + nprocPerNode - 1, runDir, masterAddr,
            masterPort());
        final NodeAgent agent = new NodeAgent(agentConfig(nodeRank, masterPort(), joinKey, job, runDir, javaExecutable, echoRanks));
        agent.run();
        if (agent.failure() != null) {
            System.out.println("moeflow launch: " + agent.failure());
        } else {
            System.out.println("moeflow launch: node " + nodeRank + ": the job ended with exit code " + agent.exitCode());
        }
        return agent.exitCode();
    }

    /** Listens for the rendezvous. */
    RendezvousServer bindServer(final String joinKey) throws BadLaunchInput {
        try {
            return RendezvousServer.bind(masterAddr, masterPort(), joinKey);
        } catch (final IllegalArgumentException e) {
            throw new BadLaunchInput(e.getMessage());
        }
    }

    /** Node 0: the run's directory, created (or reused when resuming). */
    static Path createRunDirectory(final TrainCommand train) {
        final String runName = train.runName != null ? train.runName
            : RunDirectory.timestampedName("run-");
        return train.resume == null ? RunDirectory.create(train.runsDir, runName)
            : train.resume.equals(CheckpointStore.AUTO) ? RunDirectory.createOrReuse(train.runsDir, runName)
            : RunDirectory.ofCheckpoint(Path.of(train.resume));
    }

    /** Other nodes: node 0 creates the run's directory on the shared --runs-dir; the agent checks it can see it at START. */
    static Path sharedRunDirectory(final TrainCommand train) {
        return train.resume != null && !train.resume.equals(CheckpointStore.AUTO) ? RunDirectory.ofCheckpoint(Path.of(train.resume))
            : RunDirectory.resolve(train.runsDir, train.runName).toAbsolutePath();
    }

    private int workerThreads(final TrainCommand train) {
        final int cores = Runtime.getRuntime().availableProcessors();
        return train.threads != null ? train.threads : Math.max(1, cores / nprocPerNode);
    }

    /** The master's plan: the job's shape, timeouts and the workers' arguments. */
    LaunchPlan makePlan(final TrainJob job, final Path runDir, final int threads) {
        final List<String> workerArgs = new ArrayList<>(job.parsedArgs());
        workerArgs.addAll(List.of("--run-name", runDir.getFileName().toString(), "--runs-dir", runDir.getParent().toString(),
            "--threads", Integer.toString(threads)));
        return new LaunchPlan(runDir.getFileName().toString(), nnodes, nprocPerNode, maxRestarts,
            TimeUnit.SECONDS.toNanos(joinTimeoutSeconds), TimeUnit.SECONDS.toNanos(stopTimeoutSeconds),
            (long) (heartbeatIntervalSeconds * 1e9), (long) (failureBoundSeconds * 1e9), udpMtuBytes, job.argsHash(), workerArgs,
            List.of("--resume", CheckpointStore.AUTO), runDir,
            job.train().steps, transport);
    }

    /** The agent of node {@code node}, as this launcher's options say. */
    NodeAgent.Config agentConfig(final int node, final int port, final String joinKey, final TrainJob job, final Path runDir,
                                 final Path javaExecutable, final Set<Integer> echoRanks) {
        return new NodeAgent.Config(masterAddr, port, node, nnodes, nprocPerNode, joinKey, job.argsHash(), javaExecutable,
            WorkerProcesses.inheritedJvmFlags(), System.getProperty("java.class.path"), Main.class.getName(), runDir, echoRanks,
            System.out, TimeUnit.SECONDS.toNanos(joinTimeoutSeconds), TimeUnit.SECONDS.toNanos(stopTimeoutSeconds), testNeverJoin,
            nodeAddr, transport);
    }

    /**
     * Runs the job's master until the job ends, with the progress line and the stop hook, then awaits the agents this
     * launcher started ({@code agents}: node 0's thread, or remote agents).
     *
     * @return the job's exit code
     */
    int runMaster(final LaunchPlan plan, final RendezvousServer server, final List<AgentHandle> agents,
                  final Consumer<JobMaster> attach) throws InterruptedException {
        final PrintStream out = System.out;
        final Path runDir = plan.runDir();
        final JobProgress progress = new JobProgress(plan.totalSteps(), out);
        final JobMaster master = new JobMaster(plan, server, out, progress::onStep);
        attach.accept(master);
        // Ctrl-C or SIGTERM: the agent's own hook stops the workers gracefully (they finish the step and save);
        // this one makes sure the master takes their exits as the end of the job, not as a failure to restart.
        final CountDownLatch masterDone = new CountDownLatch(1);
        final Thread stopHook = new Thread(() -> {
            master.requestStop();
            try { // let the master see the workers' exits and say how to continue, then the JVM may end
                masterDone.await(2 * stopTimeoutSeconds + 10, TimeUnit.SECONDS);
            } catch (final InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }, "moeflow-launch-stop");
        Runtime.getRuntime().addShutdownHook(stopHook);
        final int code;
        try {
            code = master.run();
            if (master.stopRequested()) {
                out.println("moeflow launch: stopped by a signal (exit code " + code + "); continue with: " + (nnodes > 1
                    ? (hostfile != null ? "the same launch --hostfile command" : "the same launch command on every node")
                    + ", with the train option --resume auto (run " + runDir + ")"
                    : "./moeflow launch --nproc-per-node " + nprocPerNode + " train --run-name " + runDir.getFileName() + " --runs-dir "
                    + runDir.getParent() + " --resume auto"));
            }
        } finally {
            masterDone.countDown();
            progress.close();
            for (final AgentHandle agent : agents) {
                agent.await(TimeUnit.SECONDS.toNanos(stopTimeoutSeconds + 10));
            }
            try {
                Runtime.getRuntime().removeShutdownHook(stopHook);
            } catch (final IllegalStateException shuttingDown) {
                // the hook runs or ran
            }
        }
        if (code != 0) {
            agents.stream().map(AgentHandle::failure).filter(f -> f != null).forEach(f -> out.println("moeflow launch: " + f));
        }
        if (code == 0) {
            out.println("moeflow launch: all " + plan.worldSize() + " ranks finished; run " + runDir);
        }
        return code;
    }

    private int fail(final String message) {
        System.err.println("moeflow launch: " + message);
        return EXIT_BAD_INPUT;
    }

    static Set<Integer> echoRanks(final String text, final int ranks) {
        final Set<Integer> set = new TreeSet<>();
        if (text.equalsIgnoreCase("all")) {
            for (int r = 0; r < ranks; r++) {
                set.add(r);
            }
            return set;
        }
        if (text.equalsIgnoreCase("none")) {
            return set;
        }
        for (final String part : text.split(",")) {
            try {
                final int r = Integer.parseInt(part.strip());
                if (r < 0 || r >= ranks) {
                    throw new IllegalArgumentException("--echo " + text + ": rank " + r + " is not in [0, " + ranks + ")");
                }
                set.add(r);
            } catch (final NumberFormatException e) {
                throw new IllegalArgumentException("--echo " + text + ": give ranks like 0,1, or all, or none");
            }
        }
        return set;
    }

    /** The launcher's one progress line for the job, fed by rank 0's steps over the rendezvous. */
    private static final class JobProgress implements AutoCloseable {
        private final long totalSteps;
        private final PrintStream out;
        private final StepMetrics metrics = new StepMetrics(0, 0);
        private TrainingProgress progress;
        private long lastStep = -1;

        JobProgress(final long totalSteps, final PrintStream out) {
            this.totalSteps = totalSteps;
            this.out = out;
        }

        void onStep(final Message m) {
            metrics.step = m.getLong("step");
            if (progress == null || metrics.step <= lastStep) { // the first step of a (re)start
                close();
                progress = new TrainingProgress(metrics.step - 1, totalSteps, System.console() != null, out);
            }
            lastStep = metrics.step;
            metrics.loss = m.getDouble("loss");
            metrics.crossEntropy = m.getDouble("ce");
            metrics.lr = m.getDouble("lr");
            metrics.stageName = m.get("stage");
            metrics.stageIndex = m.getInt("stageIndex");
            metrics.tokensPerSecond = m.getDouble("tps");
            metrics.tokensConsumed = m.getLong("tokens");
            metrics.samplesConsumed = m.getLong("samples");
            progress.update(metrics);
        }

        @Override
        public void close() {
            if (progress != null) {
                progress.close();
                progress = null;
            }
        }
    }
}
