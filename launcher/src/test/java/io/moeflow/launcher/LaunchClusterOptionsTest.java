package io.moeflow.launcher;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import picocli.CommandLine;

/** launch --hostfile and the Slurm/Kubernetes defaults: bad input in one line, and which flags the environment fills. */
@Timeout(60)
class LaunchClusterOptionsTest {
    @TempDir
    Path dir;

    private Path hostfile(final String... lines) throws IOException {
        return Files.write(dir.resolve("hostfile"), List.of(lines));
    }

    private CliRun launch(final Path hostfile, final String... launchOptions) {
        final String[] head = CliRun.concat(new String[] {"launch", "--hostfile", hostfile.toString()}, launchOptions);
        return CliRun.of(CliRun.concat(head, "train", "--runs-dir", dir.resolve("runs").toString(), "--steps", "5"));
    }

    @Test
    void shouldRefuseUnequalSlotsWithoutNprocPerNode() throws IOException {
        final CliRun run = launch(hostfile("a slots=2", "b slots=1"));
        assertEquals(2, run.exitCode(), run.err());
        assertTrue(run.err().contains("moeflow launch: " + dir.resolve("hostfile") + ": hosts have different slots (a slots=2, b slots=1)"),
            run.err());
    }

    @Test
    void shouldNameTheLineOfABadHostfileAndAMissingOne() throws IOException {
        final CliRun bad = launch(hostfile("a slots=2", "b slot=2"));
        assertEquals(2, bad.exitCode(), bad.err());
        assertTrue(bad.err().contains("moeflow launch: " + dir.resolve("hostfile") + ":2: 'slot=2': unknown option"), bad.err());
        final CliRun missing = launch(dir.resolve("nothing"));
        assertEquals(2, missing.exitCode(), missing.err());
        assertTrue(missing.err().contains("moeflow launch: --hostfile " + dir.resolve("nothing") + ": cannot read it"), missing.err());
    }

    @Test
    void shouldRefuseFlagsTheHostfileDecides() throws IOException {
        final Path hosts = hostfile("a", "b");
        final CliRun rank = launch(hosts, "--node-rank", "1");
        assertEquals(2, rank.exitCode(), rank.err());
        assertTrue(rank.err().contains("--node-rank with --hostfile: the launcher starts every node's agent itself"), rank.err());
        final CliRun nodes = launch(hosts, "--nnodes", "3");
        assertEquals(2, nodes.exitCode(), nodes.err());
        assertTrue(nodes.err().contains("--nnodes 3 with --hostfile " + hosts + " of 2 hosts: drop --nnodes"), nodes.err());
    }

    /** ssh that cannot log in ends at once: the launcher says so instead of waiting out the join timeout. */
    @Test
    void shouldEndAtOnceNamingTheNodeWhenItsSshFails() throws IOException {
        final CliRun run = launch(hostfile("127.0.0.1 slots=1", "127.0.0.2 slots=1"), "--ssh-command", "/bin/false",
            "--join-timeout", "600");
        assertEquals(3, run.exitCode(), run.out() + run.err());
        assertTrue(run.out().contains("moeflow launch: node 0 (/bin/false 127.0.0.1): the agent ended with exit code 1"), run.out());
    }

    /** The script docs/launch.md shows is the one the Slurm test submits. */
    @Test
    void shouldShowTheTestedSbatchScriptInTheDocs() throws IOException {
        final Path docs = Path.of(System.getProperty("user.dir")).getParent().resolve("docs");
        final String script = Files.readString(docs.resolve("examples/moeflow.sbatch"));
        assertTrue(Files.readString(docs.resolve("launch.md")).contains("```bash\n" + script + "```"),
            "docs/launch.md shows docs/examples/moeflow.sbatch verbatim");
    }

    private static LaunchCommand parsed(final String... args) {
        final CommandLine cli = new CommandLine(new LaunchCommand());
        cli.setStopAtPositional(true); // as Main does: everything after "train" is the workers'
        cli.parseArgs(args);
        return cli.getCommand();
    }

    private static Map<String, String> withKey(final Map<String, String> env) {
        final Map<String, String> keyed = new HashMap<>(env);
        keyed.put("MOEFLOW_JOIN_KEY", "cd".repeat(32));
        return keyed;
    }

    private static Map<String, String> slurmTask(final int procId) {
        final Map<String, String> env = new HashMap<>(Map.of("SLURM_JOB_ID", "77", "SLURM_STEP_ID", "0", "SLURM_PROCID",
            Integer.toString(procId), "SLURM_NTASKS", "2", "SLURM_LOCALID", "0", "SLURM_NODEID", Integer.toString(procId),
            "SLURM_JOB_NUM_NODES", "2", "SLURM_JOB_NODELIST", "n[1-2]"));
        return env;
    }

    @Test
    void shouldTakeTheJobShapeFromSlurmUnlessGiven() throws Exception {
        final LaunchCommand noKey = parsed("--nproc-per-node", "2", "train", "--steps", "5");
        final LaunchCommand.BadLaunchInput e = assertThrows(LaunchCommand.BadLaunchInput.class,
            () -> noKey.applyClusterDefaults(slurmTask(1)));
        assertTrue(e.getMessage().startsWith("Slurm job 77: no join key in MOEFLOW_JOIN_KEY; every node needs the same one: export "
            + "MOEFLOW_JOIN_KEY=$(openssl rand -hex 32) in the batch script before srun"), e.getMessage());

        final LaunchCommand task = parsed("--nproc-per-node", "2", "train", "--steps", "5");
        task.applyClusterDefaults(withKey(slurmTask(1)));
        assertEquals(List.of(2, 1, "n1", 20077), List.of(task.nnodes, task.nodeRank, task.masterAddr, task.masterPort()));
        assertEquals(List.of("--steps", "5", "--run-name", "slurm-77"), task.trainArgs);

        final LaunchCommand given = parsed("--master-port", "1234", "--master-addr", "10.0.0.9", "train", "--run-name", "mine");
        given.applyClusterDefaults(withKey(slurmTask(0)));
        assertEquals(List.of(2, 0, "10.0.0.9", 1234), List.of(given.nnodes, given.nodeRank, given.masterAddr, given.masterPort()));
        assertEquals(List.of("--run-name", "mine"), given.trainArgs, "the run name given is kept");
    }

    @Test
    void shouldTakeTheNodeRankFromAKubernetesIndexAndSayWhatIsMissing() throws Exception {
        final LaunchCommand pod = parsed("--nnodes", "3", "train");
        pod.applyClusterDefaults(withKey(Map.of("JOB_COMPLETION_INDEX", "2", "MOEFLOW_MASTER_ADDR", "moe-0.moe", "HOSTNAME", "moe-2")));
        assertEquals(List.of(3, 2, "moe-0.moe", 29500), List.of(pod.nnodes, pod.nodeRank, pod.masterAddr, pod.masterPort()));
        assertEquals(List.of("--run-name", "k8s-moe"), pod.trainArgs);

        final LaunchCommand lacking = parsed("train");
        final LaunchCommand.BadLaunchInput e = assertThrows(LaunchCommand.BadLaunchInput.class,
            () -> lacking.applyClusterDefaults(Map.of("JOB_COMPLETION_INDEX", "0", "MOEFLOW_MASTER_ADDR", "moe-0.moe")));
        assertTrue(e.getMessage().contains("set MOEFLOW_NNODES to the job's completions or give --nnodes"), e.getMessage());
    }

    @Test
    void shouldLaunchOnThisHostOnlyOutsideSrunAndOutsideClusters() throws Exception {
        final Map<String, String> batchShell = slurmTask(0);
        batchShell.remove("SLURM_STEP_ID");
        final LaunchCommand inBatch = parsed("--nproc-per-node", "2", "train");
        inBatch.applyClusterDefaults(batchShell);
        assertEquals(List.of(1, 0, "127.0.0.1", 0), List.of(inBatch.nnodes, inBatch.nodeRank, inBatch.masterAddr, inBatch.masterPort()));
        final LaunchCommand plain = parsed("train");
        plain.applyClusterDefaults(Map.of("HOME", "/root"));
        assertEquals(List.of(), plain.trainArgs);
    }
}
