package io.moeflow.launcher;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;

import io.moeflow.launcher.launch.JoinKey;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** Bad launch input: one clear line, exit code 2, within seconds, and no worker JVM started. */
@Timeout(60)
class LaunchCommandTest {
    @TempDir
    Path runs;

    private CliRun launch(final String... args) {
        return CliRun.of(args);
    }

    @Test
    void shouldSayThePortIsBusyAndWhatToDo() throws IOException {
        try (ServerSocket taken = new ServerSocket(0, 1, InetAddress.getByName("127.0.0.1"))) {
            final int port = taken.getLocalPort();
            final CliRun run = launch("launch", "--nproc-per-node", "2", "--master-port", Integer.toString(port), "train",
                "--run-name", "busy", "--runs-dir", runs.toString(), "--steps", "5");
            assertEquals(2, run.exitCode(), run.err());
            assertTrue(run.err().contains("moeflow launch: --master-port " + port + ": cannot listen on 127.0.0.1:" + port), run.err());
            assertTrue(run.err().contains("pick another with --master-port, or 0 for any free port"), run.err());
            assertFalse(Files.exists(runs.resolve("busy")), "no run directory, so the same command with a free port works");
        }
    }

    @Test
    void shouldSayJavaIsMissing() {
        final CliRun run = launch("launch", "--nproc-per-node", "2", "--java", "/nonexistent/jdk/bin/java", "train", "--runs-dir",
            runs.toString(), "--steps", "5");
        assertEquals(2, run.exitCode(), run.err());
        assertTrue(run.err().contains("moeflow launch: --java /nonexistent/jdk/bin/java: no such executable; install Java 17"), run.err());
    }

    @Test
    void shouldRejectBadTrainOptionsBeforeStartingWorkers() {
        final CliRun run = launch("launch", "--nproc-per-node", "2", "train", "--runs-dir", runs.toString(), "--run-name", "bad",
            "--stepz", "5");
        assertEquals(2, run.exitCode(), run.err());
        assertTrue(run.err().contains("moeflow launch: train options: Unknown options: '--stepz', '5'"), run.err());
        assertFalse(Files.exists(runs.resolve("bad")), "nothing created");
    }

    @Test
    void shouldRejectAGlobalBatchThatDoesNotSplitOverTheRanks() {
        final CliRun run = launch("launch", "--nproc-per-node", "3", "train", "--runs-dir", runs.toString(), "--batch-size", "16");
        assertEquals(2, run.exitCode(), run.err());
        assertTrue(run.err().contains("--batch-size 16 with --nproc-per-node 3: the global batch must split evenly over the ranks; "
            + "give a multiple of 3"), run.err());
    }

    @Test
    void shouldLaunchTrainOnly() {
        final CliRun run = launch("launch", "--nproc-per-node", "2", "eval");
        assertEquals(2, run.exitCode(), run.err());
        assertTrue(run.err().contains("'eval': launch runs train only"), run.err());
    }

    @Test
    void shouldRefuseAnExistingRunWithoutResume() throws IOException {
        Files.createDirectories(runs.resolve("taken"));
        final CliRun run = launch("launch", "--nproc-per-node", "2", "train", "--runs-dir", runs.toString(), "--run-name", "taken");
        assertEquals(2, run.exitCode(), run.err());
        assertTrue(run.err().contains("already exists; pick another name, or continue that run with --resume auto"), run.err());
    }

    private Path keyFile(final String mode) throws IOException {
        final Path file = runs.resolve("key-" + mode);
        Files.writeString(file, JoinKey.generate() + "\n");
        Files.setPosixFilePermissions(file, PosixFilePermissions.fromString(mode));
        return file;
    }

    @Test
    void shouldAskForAJoinKeyOnSeveralNodesAndSayHowToMakeOne() {
        final CliRun run = launch("launch", "--nnodes", "2", "--nproc-per-node", "1", "train", "--runs-dir", runs.toString(),
            "--run-name", "nokey", "--steps", "5");
        assertEquals(2, run.exitCode(), run.err());
        assertTrue(run.err().contains("--nnodes 2: a multi-node job needs its join key on every node: make one with openssl rand -hex 32"),
            run.err());
        assertFalse(Files.exists(runs.resolve("nokey")), "nothing created");
    }

    @Test
    void shouldRefuseAJoinKeyFileOthersMayRead() throws IOException {
        final Path file = keyFile("rw-r--r--");
        final CliRun run = launch("launch", "--nnodes", "2", "--join-key-file", file.toString(), "train", "--runs-dir", runs.toString(),
            "--run-name", "open", "--steps", "5");
        assertEquals(2, run.exitCode(), run.err());
        assertTrue(run.err().contains("--join-key-file " + file + ": others may read it (rw-r--r--); make it private with chmod 600"),
            run.err());
    }

    @Test
    void shouldNeedAnExplicitRunNameOnSeveralNodes() throws IOException {
        final CliRun run = launch("launch", "--nnodes", "2", "--join-key-file", keyFile("rw-------").toString(), "train", "--runs-dir",
            runs.toString(), "--steps", "5");
        assertEquals(2, run.exitCode(), run.err());
        assertTrue(run.err().contains("a multi-node job needs an explicit --run-name so that every node names the same run"), run.err());
    }

    @Test
    void shouldRejectANodeRankOutsideTheJob() {
        final CliRun run = launch("launch", "--nnodes", "2", "--node-rank", "2", "train", "--steps", "5");
        assertEquals(2, run.exitCode(), run.err());
        assertTrue(run.err().contains("--node-rank 2 with --nnodes 2: must be in [0, 2)"), run.err());
    }

    @Test
    void shouldSplitTheGlobalBatchOverEveryNodesRanks() throws IOException {
        final CliRun run = launch("launch", "--nnodes", "3", "--node-rank", "1", "--join-key-file", keyFile("rw-------").toString(),
            "--nproc-per-node", "2", "train", "--runs-dir", runs.toString(), "--run-name", "r", "--batch-size", "16");
        assertEquals(2, run.exitCode(), run.err());
        assertTrue(run.err().contains("--batch-size 16 with 3 nodes of --nproc-per-node 2: the global batch must split evenly over the "
            + "ranks; give a multiple of 6"), run.err());
    }

    @Test
    void shouldSayInOneLineWhenANodeCannotReachTheMaster() throws IOException {
        final int port;
        try (ServerSocket free = new ServerSocket(0, 1, InetAddress.getByName("127.0.0.1"))) {
            port = free.getLocalPort(); // closed again: nobody listens there
        }
        final CliRun run = launch("launch", "--nnodes", "2", "--node-rank", "1", "--master-port", Integer.toString(port),
            "--join-timeout", "1", "--join-key-file", keyFile("rw-------").toString(), "train", "--runs-dir", runs.toString(),
            "--run-name", "lonely", "--steps", "5");
        assertEquals(3, run.exitCode(), run.out() + run.err());
        assertTrue(run.out().contains("moeflow launch: node agent 1: could not reach the master at 127.0.0.1:" + port + " within 1 s ("),
            run.out());
        assertTrue(run.out().contains("start node 0 (--node-rank 0) with the same --master-addr and --master-port"), run.out());
        assertFalse(Files.exists(runs.resolve("lonely")), "only node 0 creates the run directory");
    }

    @Test
    void shouldFailTransportRdmaWithoutRdmaInOneLineNamingWhatIsMissing() {
        org.junit.jupiter.api.Assumptions.assumeFalse(io.moeflow.transport.rdma.RdmaSupport.probe().available(),
            "this host has RDMA, so --transport rdma would run");
        final CliRun run = launch("launch", "--nproc-per-node", "2", "--transport", "rdma", "train", "--runs-dir", runs.toString(),
            "--run-name", "rdma", "--steps", "5");
        assertEquals(2, run.exitCode(), run.err());
        final String[] lines = run.err().strip().split("\n");
        assertEquals(1, lines.length, "one line: " + run.err());
        assertTrue(lines[0].startsWith("moeflow launch: --transport rdma: node 0 (this host): RDMA unavailable: "), lines[0]);
        assertTrue(lines[0].contains("an RDMA device") || lines[0].contains("libdisni"), lines[0]);
        assertTrue(lines[0].contains("docs/rdma.md") || lines[0].contains("modprobe rdma_rxe"), "says how to install: " + lines[0]);
        assertTrue(lines[0].endsWith("(or use --transport auto to fall back to ipc)"), lines[0]);
        assertFalse(run.err().contains("UnsatisfiedLinkError\n") || run.err().contains("\tat "), "no stack trace");
        assertFalse(Files.exists(runs.resolve("rdma")), "nothing created");
    }

    @Test
    void shouldRejectAnUnknownTransportAndANodeAddressOfAnotherHost() {
        final CliRun bogus = launch("launch", "--nproc-per-node", "2", "--transport", "bogus", "train", "--runs-dir", runs.toString(),
            "--run-name", "bogus");
        assertEquals(2, bogus.exitCode(), bogus.err());
        assertEquals("moeflow launch: --transport bogus: must be one of auto|ipc|udp|rdma", bogus.err().strip());
        assertFalse(Files.exists(runs.resolve("bogus")), "nothing created");

        final CliRun foreign = launch("launch", "--nproc-per-node", "2", "--node-addr", "192.0.2.1", "train", "--runs-dir",
            runs.toString(), "--run-name", "foreign");
        assertEquals(2, foreign.exitCode(), foreign.err());
        assertTrue(foreign.err().contains("--node-addr 192.0.2.1: not an address of this host"), foreign.err());
        final CliRun wildcard = launch("launch", "--nproc-per-node", "2", "--node-addr", "0.0.0.0", "train", "--runs-dir",
            runs.toString(), "--run-name", "wildcard");
        assertEquals(2, wildcard.exitCode(), wildcard.err());
        assertTrue(wildcard.err().contains("--node-addr 0.0.0.0: a wildcard address"), wildcard.err());
    }
}
