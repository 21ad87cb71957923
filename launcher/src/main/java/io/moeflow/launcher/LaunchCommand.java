package io.moeflow.launcher;

import java.io.File;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.LocalDateTime;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import io.moeflow.checkpoint.CheckpointStore;
import io.moeflow.launcher.launch.JobMaster;
import io.moeflow.launcher.launch.JoinKey;
import io.moeflow.launcher.launch.LaunchPlan;
import io.moeflow.launcher.launch.Message;
import io.moeflow.launcher.launch.NodeAgent;
import io.moeflow.launcher.launch.RendezvousServer;
import io.moeflow.launcher.report.TrainingProgress;
import io.moeflow.trainer.StepMetrics;
import io.moeflow.transport.bench.WorkerProcesses;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/**
 * {@code moeflow launch --nproc-per-node N train ...}: one training job over N worker JVMs on this
 * host, torchrun-style. The launcher is the job's master (it hosts the rendezvous and decides
 * restarts) and runs this host's node agent in a thread; the agent starts the workers. A cluster
 * launch (issue 10) adds agents on other hosts that join the same rendezvous.
 */
@Command(name = "launch", mixinStandardHelpOptions = true, sortOptions = false, usageHelpAutoWidth = true,
    description = {"Train one model with several worker JVMs on this host (data and expert parallel), like torchrun.",
        "The train options mean what they mean for moeflow train; the global batch (--batch-size) is the same whatever N.",
        "Each worker's output goes to runs/<name>/rank-<k>.log; rank 0's is echoed, prefixed [rank 0]."})
public final class LaunchCommand implements Callable<Integer> {
    /** Exit code of bad launch options. */
    static final int EXIT_BAD_INPUT = 2;

    @Option(names = "--nproc-per-node", paramLabel = "N", defaultValue = "1",
        description = "Worker JVMs (ranks) on this host. Default: ${DEFAULT-VALUE}")
    int nprocPerNode;

    @Option(names = "--max-restarts", paramLabel = "K", defaultValue = "0",
        description = "Restarts of the whole group after a worker fails, for the whole job; each restart resumes from the newest "
            + "complete checkpoint. Default: ${DEFAULT-VALUE}")
    int maxRestarts;

    @Option(names = "--master-addr", paramLabel = "ADDR", defaultValue = "127.0.0.1",
        description = "Address the rendezvous listens on (the workers' MASTER_ADDR). Default: ${DEFAULT-VALUE}")
    String masterAddr;

    @Option(names = "--master-port", paramLabel = "PORT", defaultValue = "0",
        description = "TCP port of the rendezvous (MASTER_PORT); 0 = any free port. Default: ${DEFAULT-VALUE}")
    int masterPort;

    @Option(names = "--join-timeout", paramLabel = "SECONDS", defaultValue = "120",
        description = "How long the workers of each (re)start have to join the rendezvous. Default: ${DEFAULT-VALUE}")
    long joinTimeoutSeconds;

    @Option(names = "--stop-timeout", paramLabel = "SECONDS", defaultValue = "30",
        description = "How long workers have to stop (Ctrl-C: finish the step and save) before they are killed. "
            + "Default: ${DEFAULT-VALUE}")
    long stopTimeoutSeconds;

    @Option(names = "--echo", paramLabel = "RANKS", defaultValue = "0",
        description = "Ranks whose output is echoed with a [rank k] prefix: a list (0,1), 'all' or 'none'. Default: ${DEFAULT-VALUE}")
    String echo;

    @Option(names = "--java", paramLabel = "PATH",
        description = "Java executable of the workers. Default: the one running this launcher")
    Path java;

    /** Test hook: this rank's worker never joins the rendezvous. */
    @Option(names = "--test-never-join", hidden = true, defaultValue = "-1")
    int testNeverJoin;

    @Parameters(index = "0", paramLabel = "train", description = "The command each worker runs: train.")
    String command;

    @Parameters(index = "1..*", paramLabel = "TRAIN-OPTIONS", description = "Options of moeflow train (see moeflow train --help).")
    List<String> trainArgs = new ArrayList<>();

    @Spec
    CommandSpec spec;

    @Override
    public Integer call() throws InterruptedException {
        final PrintStream out = System.out;
        if (!"train".equals(command)) {
            return fail("'" + command + "': launch runs train only: moeflow launch --nproc-per-node 2 train [train options]");
        }
        if (nprocPerNode < 1 || nprocPerNode > 64) {
            return fail("--nproc-per-node " + nprocPerNode + ": must be in [1, 64]");
        }
        if (joinTimeoutSeconds < 1 || stopTimeoutSeconds < 1) {
            return fail("--join-timeout " + joinTimeoutSeconds + " --stop-timeout " + stopTimeoutSeconds + ": must be >= 1 second");
        }
        final Path javaExecutable = java != null ? java : Path.of(System.getProperty("java.home"), "bin", "java");
        if (!Files.isRegularFile(javaExecutable) || !Files.isExecutable(javaExecutable)) {
            return fail("--java " + javaExecutable + ": no such executable; install Java 17 or give the path of its bin/java");
        }
        final Set<Integer> echoRanks;
        try {
            echoRanks = echoRanks(echo, nprocPerNode);
        } catch (final IllegalArgumentException e) {
            return fail(e.getMessage());
        }

        // The train options are checked here, before any JVM starts, with the train command's own parser.
        final TrainCommand train = new TrainCommand();
        final CommandLine trainCli = new CommandLine(train);
        trainCli.setOverwrittenOptionsAllowed(true);
        trainCli.setCaseInsensitiveEnumValuesAllowed(true);
        final List<String> parsedArgs = new ArrayList<>(List.of("train"));
        parsedArgs.addAll(trainArgs);
        final File config = Main.configFile(parsedArgs.toArray(new String[0]));
        if (config != null) {
            if (!config.isFile()) {
                return fail("--config " + config + ": no such file; give the path of a .properties file");
            }
            trainCli.setDefaultValueProvider(new CommandLine.PropertiesDefaultProvider(config));
        }
        try {
            trainCli.parseArgs(trainArgs.toArray(new String[0]));
            train.model.toConfig();
            train.optimizer.toConfig();
            train.curriculum.toConfig(train.steps);
        } catch (final CommandLine.ParameterException | IllegalArgumentException e) {
            return fail("train options: " + e.getMessage());
        }
        if (trainCli.isUsageHelpRequested() || trainCli.isVersionHelpRequested()) {
            return fail("train options: --help: run moeflow train --help for the train options");
        }
        if (train.batchSize % (nprocPerNode) != 0) {
            return fail("--batch-size " + train.batchSize + " with --nproc-per-node " + nprocPerNode + ": the global batch must split "
                + "evenly over the ranks; give a multiple of " + nprocPerNode);
        }
        try {
            train.parallel.toConfig(nprocPerNode, 0).checkFits(train.model.toConfig().experts(), train.batchSize);
        } catch (final IllegalArgumentException e) {
            return fail("train options: " + e.getMessage());
        }

        // The rendezvous port first: a busy port must not leave a new, empty run directory behind (the same command
        // with another port would then be refused as "already exists").
        final String joinKey = JoinKey.generate();
        final RendezvousServer server;
        try {
            server = RendezvousServer.bind(masterAddr, masterPort, joinKey);
        } catch (final IllegalArgumentException e) {
            return fail(e.getMessage());
        }
        try (server) {
            final String runName = train.runName != null ? train.runName
                : "run-" + LocalDateTime.now().format(DateTimeFormatter.ofPattern("yyyyMMdd-HHmmss"));
            final Path runDir;
            try {
                runDir = train.resume == null ? RunDirectory.create(train.runsDir, runName)
                    : train.resume.equals(CheckpointStore.AUTO) ? RunDirectory.createOrReuse(train.runsDir, runName)
                    : RunDirectory.ofCheckpoint(Path.of(train.resume));
            } catch (final IllegalArgumentException e) {
                return fail(e.getMessage());
            }
            final int cores = Runtime.getRuntime().availableProcessors();
            final int threads = train.threads != null ? train.threads : Math.max(1, cores / nprocPerNode);
            final List<String> workerArgs = new ArrayList<>(parsedArgs);
            workerArgs.addAll(List.of("--run-name", runDir.getFileName().toString(), "--runs-dir", runDir.getParent().toString(),
                "--threads", Integer.toString(threads)));
            final LaunchPlan plan = new LaunchPlan(runDir.getFileName().toString(), 1, nprocPerNode, maxRestarts,
                TimeUnit.SECONDS.toNanos(joinTimeoutSeconds), TimeUnit.SECONDS.toNanos(stopTimeoutSeconds), workerArgs,
                List.of("--resume", CheckpointStore.AUTO), runDir, train.steps);
            out.printf("moeflow launch: run %s, %d worker JVMs on this host (ranks 0-%d), %d compute thread%s each, rendezvous at "
                    + "%s:%d; logs in %s/rank-<k>.log%n", runDir, nprocPerNode, nprocPerNode - 1, threads, threads == 1 ? "" : "s",
                masterAddr, server.port(), runDir);
            final NodeAgent agent = new NodeAgent(new NodeAgent.Config(masterAddr, server.port(), 0, nprocPerNode, joinKey,
                javaExecutable, WorkerProcesses.inheritedJvmFlags(), System.getProperty("java.class.path"), Main.class.getName(), runDir,
                echoRanks, out, TimeUnit.SECONDS.toNanos(joinTimeoutSeconds), TimeUnit.SECONDS.toNanos(stopTimeoutSeconds),
                testNeverJoin));
            final Thread agentThread = new Thread(agent, "moeflow-node-agent-0");
            agentThread.start();
            final JobProgress progress = new JobProgress(train.steps, out);
            final JobMaster master = new JobMaster(plan, server, out, progress::onStep);
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
                    out.println("moeflow launch: stopped by a signal (exit code " + code + "); continue with: ./moeflow launch "
                        + "--nproc-per-node " + nprocPerNode + " train --run-name " + runDir.getFileName() + " --runs-dir "
                        + runDir.getParent() + " --resume auto");
                }
            } finally {
                masterDone.countDown();
                progress.close();
                agentThread.join(TimeUnit.SECONDS.toMillis(stopTimeoutSeconds + 10));
                try {
                    Runtime.getRuntime().removeShutdownHook(stopHook);
                } catch (final IllegalStateException shuttingDown) {
                    // the hook runs or ran
                }
            }
            if (agent.failure() != null && code != 0) {
                out.println("moeflow launch: " + agent.failure());
            }
            if (code == 0) {
                out.println("moeflow launch: all " + nprocPerNode + " ranks finished; run " + runDir);
            }
            return code;
        }
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
