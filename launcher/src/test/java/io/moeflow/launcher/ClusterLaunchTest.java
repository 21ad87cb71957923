package io.moeflow.launcher;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import io.moeflow.checkpoint.CheckpointFile;
import io.moeflow.checkpoint.CheckpointReader;
import io.moeflow.checkpoint.CheckpointStore;
import io.moeflow.checkpoint.Resolution;
import io.moeflow.launcher.cluster.ClusterTests;
import io.moeflow.launcher.cluster.NetnsCluster;
import io.moeflow.launcher.cluster.SlurmCluster;
import io.moeflow.launcher.launch.JobMaster;
import io.moeflow.launcher.launch.JoinKey;
import io.moeflow.transport.bench.WorkerProcesses;

/**
 * Multi-node launches for real on this machine: hosts are network namespaces with their own address and sshd
 * ({@link NetnsCluster}), or tasks of a one-host Slurm cluster ({@link SlurmCluster}). Every job trains 2 ranks
 * (1 per node) and must end with the checkpoint a one-host launch of 2 ranks ends with, tensor for tensor.
 */
@Tag("slow")
@Timeout(value = 900, unit = TimeUnit.SECONDS)
class ClusterLaunchTest {
    /** The tiny model, one compute thread per worker, checkpoints every 20 steps so a restart has one to resume from. */
    private static final String[] OPTIONS = CliRun.concat(CliRun.TINY, "--threads", "1", "--steps", "60", "--save-every", "20",
        "--eval-every", "0", "--eval-samples", "0", "--samples", "0");

    @TempDir
    Path runs;

    @TempDir
    Path scratch;

    private String[] train(final String name) {
        return CliRun.concat(CliRun.concat(new String[] {"train"}, OPTIONS), "--run-name", name, "--runs-dir", runs.toString());
    }

    /** The reference: the same job as 2 worker JVMs on this host. */
    private void runOnOneHost(final String name, final String... extraTrainOptions) {
        runOnOneHost(2, name, extraTrainOptions);
    }

    private void runOnOneHost(final int workers, final String name, final String... extraTrainOptions) {
        final CliRun one = CliRun.of(CliRun.concat(CliRun.concat(new String[] {"launch", "--nproc-per-node", Integer.toString(workers)},
            train(name)), extraTrainOptions));
        assertEquals(0, one.exitCode(), one.out() + one.err());
    }

    private static void assertSameCheckpoint(final Path expected, final Path actual) {
        int compared = 0;
        for (final CheckpointFile file : CheckpointFile.values()) {
            final Map<String, Object> a = LaunchJobTest.allTensors(expected, file);
            final Map<String, Object> b = LaunchJobTest.allTensors(actual, file);
            assertEquals(a.keySet(), b.keySet());
            for (final String name : a.keySet()) {
                assertTrue(Objects.deepEquals(a.get(name), b.get(name)), file + " " + name + " of " + actual + " differs from " + expected);
                compared++;
            }
        }
        assertTrue(compared > 10, "compared " + compared + " tensors");
    }

    private Path hostfile(final NetnsCluster hosts) throws IOException {
        return hostfile(hosts, 1);
    }

    private Path hostfile(final NetnsCluster hosts, final int slots) throws IOException {
        final Path file = scratch.resolve("hostfile");
        final List<String> lines = new ArrayList<>(List.of("# written by ClusterLaunchTest"));
        for (int i = 0; i < hosts.size(); i++) {
            lines.add(hosts.address(i) + " slots=" + slots);
        }
        Files.write(file, lines);
        return file;
    }

    /**
     * A launch over the hosts; heartbeats every 5 s (a node is lost after 15 s of silence: the tests share 2 cores with
     * whatever else runs; at load 20 beats of 2 s were missed). A killed agent is seen at once: its connection closes.
     */
    private String[] hostfileLaunch(final NetnsCluster hosts, final String name, final String... launchOptions) throws IOException {
        final String[] launch = CliRun.concat(new String[] {"launch", "--hostfile", hostfile(hosts).toString(), "--ssh-command",
            hosts.sshCommandLine(), "--heartbeat-interval", "5", "--failure-bound", "5"}, launchOptions);
        return CliRun.concat(launch, train(name));
    }

    /** After a job: only each namespace's sshd is left there (no agent, no worker). */
    private static void assertNothingLeftOn(final NetnsCluster hosts) throws InterruptedException {
        for (int i = 0; i < hosts.size(); i++) {
            final int host = i;
            LaunchJobTest.await(() -> hosts.leftovers(host).isEmpty(), 30, "host " + i + " has nothing left but its sshd: "
                + hosts.leftovers(host));
        }
        final List<String> ssh = ProcessHandle.current().descendants().map(p -> commandLine(p.pid()))
            .filter(c -> c.startsWith("/usr/bin/ssh ")).toList();
        assertEquals(List.of(), ssh, "no ssh client left");
    }

    /** A process's command line from /proc (ProcessHandle.Info may not know it), or "" when it ended. */
    private static String commandLine(final long pid) {
        try {
            return Files.readString(Path.of("/proc", Long.toString(pid), "cmdline")).replace('\0', ' ');
        } catch (final IOException e) {
            return "";
        }
    }

    /** The pid of node {@code node}'s agent JVM in host {@code host}'s namespace (its command line names its node rank). */
    private static long agentPid(final NetnsCluster hosts, final int host, final int node) {
        for (final long pid : hosts.pids(host)) {
            final String command = commandLine(pid);
            if (command.contains(Main.class.getName() + " launch ") && command.contains("--node-rank " + node + " ")) {
                return pid;
            }
        }
        return -1;
    }

    @Test
    void shouldTrainOverSshOnTwoHostsLikeOnOneHost() throws Exception {
        try (NetnsCluster hosts = NetnsCluster.start(2, scratch.resolve("net"))) {
            final CliRun run = CliRun.of(hostfileLaunch(hosts, "hostfile"));
            assertEquals(0, run.exitCode(), run.out() + run.err());
            final String out = run.out();
            assertTrue(out.contains("2 nodes of 1 worker JVMs (ranks 0-1) started over /usr/bin/ssh from "), out);
            assertTrue(out.contains("master at " + hosts.bridgeAddress() + ":"), "the master listens on this host's address towards the "
                + "hosts: " + out);
            assertTrue(out.contains("[node 0] [rank 0] moeflow train: run "), "rank 0's output, relayed from host 0: " + out);
            assertTrue(out.contains("moeflow launch: all 2 ranks finished"), out);
            final String rank1 = Files.readString(runs.resolve("hostfile/rank-1.log"));
            assertTrue(rank1.contains("(rank 1 of 2, launched"), "rank 1 logged");
            assertTrue(rank1.matches("(?s).*moeflow train: rank 1 transport (udp|hybrid): .*"), "across hosts the ranks use UDP: " + rank1);
            assertNothingLeftOn(hosts);
        }
        runOnOneHost("onehost");
        assertSameCheckpoint(runs.resolve("onehost"), runs.resolve("hostfile"));
    }

    /** 2 hosts of 2 workers: IPC between the workers of a host, UDP across hosts; the same model as 4 workers on one host. */
    @Test
    void shouldTrainTwoWorkersPerHostLikeFourOnOneHost() throws Exception {
        try (NetnsCluster hosts = NetnsCluster.start(2, scratch.resolve("net"))) {
            final String[] launch = {"launch", "--hostfile", hostfile(hosts, 2).toString(), "--ssh-command", hosts.sshCommandLine(),
                "--heartbeat-interval", "5", "--failure-bound", "5"};
            final CliRun run = CliRun.of(CliRun.concat(CliRun.concat(launch, train("hybrid")), "--steps", "20"));
            assertEquals(0, run.exitCode(), run.out() + run.err());
            assertTrue(run.out().contains("2 nodes of 2 worker JVMs (ranks 0-3)"), "--nproc-per-node from the slots: " + run.out());
            assertTrue(run.out().contains("moeflow launch: all 4 ranks finished"), run.out());
            final String rank2 = Files.readString(runs.resolve("hybrid/rank-2.log"));
            assertTrue(rank2.contains("moeflow train: rank 2 transport hybrid: "), "IPC within a host, UDP across: " + rank2);
            assertNothingLeftOn(hosts);
        }
        runOnOneHost(4, "four", "--steps", "20");
        assertSameCheckpoint(runs.resolve("four"), runs.resolve("hybrid"));
    }

    @Test
    void shouldRestartFromTheNewestCheckpointWhenANodesAgentIsKilled() throws Exception {
        final Path dir = runs.resolve("restarted");
        try (NetnsCluster hosts = NetnsCluster.start(2, scratch.resolve("net"))) {
            final String key = JoinKey.generate();
            final Path keyFile = scratch.resolve("join.key");
            Files.writeString(keyFile, key + "\n");
            Files.setPosixFilePermissions(keyFile, PosixFilePermissions.fromString("rw-------"));
            final String[] args = hostfileLaunch(hosts, "restarted", "--max-restarts", "1", "--join-key-file", keyFile.toString());
            final CompletableFuture<CliRun> run = CompletableFuture.supplyAsync(() -> CliRun.of(args));
            LaunchJobTest.await(() -> new CheckpointStore(dir.resolve("checkpoints")).resolveAuto().isPresent() || run.isDone(), 300,
                "the first checkpoint");
            assertFalse(run.isDone(), "the run was still going when its first checkpoint appeared");
            final String commandLines = ClusterTests.check(20, null, "ps", "-eo", "args");
            assertTrue(commandLines.contains("--join-key-file -"), "the agents read the key from standard input: " + commandLines);
            assertFalse(commandLines.contains(key), "the join key is on no command line");
            final long agent = agentPid(hosts, 1, 1);
            assertTrue(agent > 0, "node 1's agent runs in host 1's namespace: " + hosts.pids(1));
            ProcessHandle.of(agent).orElseThrow().destroyForcibly(); // SIGKILL the whole node's agent
            final CliRun restarted = run.get(600, TimeUnit.SECONDS);
            final String out = restarted.out();
            assertEquals(0, restarted.exitCode(), out + restarted.err());
            assertTrue(out.contains("moeflow launch: node 1 (host "), out);
            assertTrue(out.contains("was lost"), out);
            assertTrue(out.contains("moeflow launch: starting a new agent of node 1 (/usr/bin/ssh " + hosts.address(1) + ")"), out);
            assertTrue(out.contains("[rank 0] resume: continuing from "), "the restart resumed from a checkpoint: " + out);
            assertNothingLeftOn(hosts);
        }
        runOnOneHost("uninterrupted");
        assertSameCheckpoint(runs.resolve("uninterrupted"), dir);
    }

    @Test
    void shouldExitNamingTheNodeWhenItsAgentIsKilledWithoutRestarts() throws Exception {
        final Path dir = runs.resolve("lost");
        try (NetnsCluster hosts = NetnsCluster.start(2, scratch.resolve("net"))) {
            final String[] args = hostfileLaunch(hosts, "lost", "--max-restarts", "0");
            final CompletableFuture<CliRun> run = CompletableFuture.supplyAsync(() -> CliRun.of(args));
            LaunchJobTest.await(() -> new CheckpointStore(dir.resolve("checkpoints")).resolveAuto().isPresent() || run.isDone(), 300,
                "the first checkpoint");
            assertFalse(run.isDone(), "the run was still going when its first checkpoint appeared");
            final long agent = agentPid(hosts, 1, 1);
            assertTrue(agent > 0, "node 1's agent runs in host 1's namespace: " + hosts.pids(1));
            ProcessHandle.of(agent).orElseThrow().destroyForcibly();
            final CliRun lost = run.get(300, TimeUnit.SECONDS);
            assertEquals(JobMaster.EXIT_AGENT_LOST, lost.exitCode(), lost.out() + lost.err());
            assertTrue(lost.out().contains("moeflow launch: node 1 (host "), lost.out());
            assertTrue(lost.out().contains("was lost"), lost.out());
            assertFalse(lost.out().contains("starting a new agent"), "no restarts allowed: " + lost.out());
            assertNothingLeftOn(hosts);
        }
    }

    /** SIGTERM reaches the launcher only: it has the agents on the other hosts stop their workers, which save at one step. */
    @Test
    void shouldStopEveryNodesWorkersAfterTheSameStepWhenTheHostfileLauncherGetsSigterm() throws Exception {
        final Path dir = runs.resolve("stopped");
        try (NetnsCluster hosts = NetnsCluster.start(2, scratch.resolve("net"))) {
            final String[] args = hostfileLaunch(hosts, "stopped", "--max-restarts", "2");
            final List<String> withoutSteps = new ArrayList<>(List.of(args));
            withoutSteps.addAll(List.of("--steps", "1000000", "--save-every", "0")); // the last value of an option wins
            final Path log = scratch.resolve("launcher.log");
            final Process launcher = new ProcessBuilder(WorkerProcesses.javaCommand(WorkerProcesses.inheritedJvmFlags(),
                Main.class.getName(), withoutSteps)).redirectErrorStream(true).redirectOutput(log.toFile()).start();
            try {
                try {
                    LaunchJobTest.await(() -> LaunchJobTest.contains(log, "step 1/1000000") || !launcher.isAlive(), 120, "the job trains");
                } catch (final AssertionError e) {
                    throw new AssertionError(e.getMessage() + ": " + Files.readString(log), e);
                }
                launcher.destroy(); // SIGTERM, as Ctrl-C or a scheduler would send
                assertTrue(launcher.waitFor(180, TimeUnit.SECONDS), "the launcher exits after the workers saved");
                final String out = Files.readString(log);
                assertTrue(out.contains("moeflow launch: stopped by a signal"), out);
                assertFalse(out.contains("restarting"), "a stop is not a failure to restart: " + out);
                final Matcher stop0 = Pattern.compile("stopped at step (\\d+)").matcher(Files.readString(dir.resolve("rank-0.log")));
                final Matcher stop1 = Pattern.compile("stopped at step (\\d+)").matcher(Files.readString(dir.resolve("rank-1.log")));
                assertTrue(stop0.find() && stop1.find(), "both ranks say where they stopped: " + out);
                assertEquals(stop0.group(1), stop1.group(1), "every rank stops after the same step");
                final Resolution newest = new CheckpointStore(dir.resolve("checkpoints")).resolveAuto().orElseThrow();
                try (CheckpointReader reader = CheckpointReader.open(newest.directory())) {
                    assertEquals(Long.parseLong(stop0.group(1)), reader.step(), "the checkpoint of the step they stopped after");
                }
                assertNothingLeftOn(hosts);
            } finally {
                launcher.descendants().forEach(ProcessHandle::destroyForcibly);
                launcher.destroyForcibly();
            }
        }
    }

    /** kill -9 of a --hostfile launcher: its agents lose their master and end their workers; its ssh clients end too. */
    @Test
    void shouldLeaveNothingOnAnyHostWhenTheHostfileLauncherIsKilled() throws Exception {
        try (NetnsCluster hosts = NetnsCluster.start(2, scratch.resolve("net"))) {
            final List<String> args = new ArrayList<>(List.of(hostfileLaunch(hosts, "killed")));
            args.addAll(List.of("--steps", "1000000", "--save-every", "0"));
            final Path log = scratch.resolve("launcher.log");
            final Process launcher = new ProcessBuilder(WorkerProcesses.javaCommand(WorkerProcesses.inheritedJvmFlags(),
                Main.class.getName(), args)).redirectErrorStream(true).redirectOutput(log.toFile()).start();
            try {
                LaunchJobTest.await(() -> LaunchJobTest.contains(log, "step 1/1000000") || !launcher.isAlive(), 120, "the job trains");
                assertTrue(launcher.isAlive(), Files.readString(log));
                final List<ProcessHandle> ssh = launcher.descendants().filter(p -> commandLine(p.pid()).startsWith("/usr/bin/ssh ")).toList();
                assertEquals(2, ssh.size(), "one ssh client per host");
                assertTrue(hosts.leftovers(1).size() >= 2, "host 1 runs an agent and a worker: " + hosts.leftovers(1));
                launcher.destroyForcibly(); // SIGKILL: no shutdown hook, no close() runs in the launcher
                assertNothingLeftOn(hosts);
                LaunchJobTest.await(() -> ssh.stream().noneMatch(ProcessHandle::isAlive), 30, "the ssh clients end with their agents");
            } finally {
                launcher.descendants().forEach(ProcessHandle::destroyForcibly);
                launcher.destroyForcibly();
            }
        }
    }

    /** The docs' sbatch script, submitted to a real (one-host) Slurm cluster: 2 tasks, so 2 node agents of 1 worker each. */
    @Test
    void shouldTrainUnderSlurmWithTheDocsSbatchScriptLikeOnOneHost() throws Exception {
        try (SlurmCluster slurm = SlurmCluster.start(scratch.resolve("slurm"))) {
            // What ./moeflow runs, without its jar build: this JVM's java, flags and class path.
            final Path cli = scratch.resolve("moeflow");
            Files.writeString(cli, "#!/bin/sh\nexec " + String.join(" ", WorkerProcesses.javaCommand(WorkerProcesses.inheritedJvmFlags(),
                Main.class.getName(), List.of()).stream().map(w -> "'" + w + "'").toList()) + " \"$@\"\n");
            Files.setPosixFilePermissions(cli, PosixFilePermissions.fromString("rwx------"));
            final Path script = Path.of(System.getProperty("user.dir")).getParent().resolve("docs/examples/moeflow.sbatch");
            assertTrue(Files.isRegularFile(script), script + " exists");
            final Path output = scratch.resolve("slurm-job.out");
            final List<String> command = new ArrayList<>(List.of("/usr/bin/sbatch", "--wait", "--nodes=1", "--ntasks=2",
                "--ntasks-per-node=2", "--output=" + output, "--chdir=" + scratch, script.toString()));
            command.addAll(List.of(OPTIONS));
            command.addAll(List.of("--run-name", "slurm", "--runs-dir", runs.toString()));
            final ProcessBuilder sbatch = slurm.command(command.toArray(new String[0])).redirectErrorStream(true);
            sbatch.environment().put("MOEFLOW", cli.toString());
            sbatch.environment().put("NPROC", "1");
            sbatch.environment().put("LAUNCH_OPTIONS", "--heartbeat-interval 5 --failure-bound 5");
            final Process p = sbatch.start();
            final boolean ended = p.waitFor(600, TimeUnit.SECONDS);
            final String submitted = new String(p.getInputStream().readAllBytes());
            final String printed = Files.isRegularFile(output) ? Files.readString(output) : "(no job output)";
            assertTrue(ended, "sbatch --wait returned: " + submitted + printed);
            assertEquals(0, p.exitValue(), submitted + printed);
            assertTrue(printed.contains("moeflow launch: detected Slurm job "), printed);
            assertTrue(printed.contains("--nnodes 2 --node-rank 0 --master-addr " + slurm.nodeName()), printed);
            assertTrue(printed.contains("--nnodes 2 --node-rank 1 --master-addr " + slurm.nodeName()), printed);
            assertTrue(printed.contains("moeflow launch: all 2 ranks finished"), printed);
        }
        runOnOneHost("onehost");
        assertSameCheckpoint(runs.resolve("onehost"), runs.resolve("slurm"));
    }
}
