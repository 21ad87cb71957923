package io.moeflow.launcher;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import io.moeflow.launcher.launch.JoinKey;
import io.moeflow.transport.bench.LoopbackPorts;
import io.moeflow.transport.bench.WorkerProcesses;

/**
 * {@code launch --transport}: the same job gives the same bits whatever carries the frames: Aeron UDP
 * (each rank its own driver) or IPC on one node, and hybrid on two nodes (two launchers on this host).
 */
@Tag("slow")
@Timeout(value = 600, unit = TimeUnit.SECONDS)
class LaunchTransportTest {
    private static final String[] TINY = CliRun.concat(CliRun.TINY, "--threads", "1");
    /** Fields of a metrics line that depend only on the model and the data, not on time. */
    private static final List<String> FIELDS = List.of("loss", "ce_loss", "grad_norm");

    @TempDir
    Path runs;

    private CliRun launch(final String name, final String transport) {
        final List<String> args = new ArrayList<>(List.of("launch", "--nproc-per-node", "2", "--transport", transport, "train"));
        args.addAll(List.of(TINY));
        args.addAll(List.of("--run-name", name, "--runs-dir", runs.toString(), "--steps", "12"));
        return CliRun.of(args.toArray(new String[0]));
    }

    @Test
    void shouldTrainBitwiseTheSameOverUdpAsOverIpc() throws IOException {
        final CliRun udp = launch("udp", "udp");
        assertEquals(0, udp.exitCode(), udp.out() + udp.err());
        assertTrue(udp.out().contains("moeflow launch: transport udp between every pair of ranks (--transport udp)"), udp.out());
        assertTrue(Files.readString(runs.resolve("udp").resolve("rank-1.log")).contains("moeflow train: rank 1 transport udp: aeron-udp:"),
            "rank 1 connected over UDP");
        final CliRun ipc = launch("ipc", "ipc");
        assertEquals(0, ipc.exitCode(), ipc.out() + ipc.err());
        assertTrue(Files.readString(runs.resolve("ipc").resolve("rank-1.log")).contains("moeflow train: rank 1 transport ipc: aeron-ipc:"),
            "rank 1 connected over IPC");
        assertTrue(ipc.out().contains("moeflow launch: transport ipc through this node's media driver (--transport ipc)"), ipc.out());

        // The reduction order is fixed by rank whatever carries the frames: every step's numbers are the same bits.
        for (final String field : FIELDS) {
            final List<String> overUdp = column(runs.resolve("udp"), field);
            assertEquals(12, overUdp.size(), field);
            assertEquals(column(runs.resolve("ipc"), field), overUdp, field + " of every step, over udp and over ipc");
        }
        assertEquals(Files.readString(runs.resolve("ipc").resolve("eval.json")), Files.readString(runs.resolve("udp").resolve("eval.json")),
            "the same evaluation");
    }

    @Test
    void shouldTrainBitwiseTheSameOnTwoNodesOverHybridAsOnOneNodeOverIpc() throws Exception {
        // Two nodes on this host: node 1 is a second launcher (its agent only), node 0 runs the master and its agent here.
        final Path key = runs.resolve("join.key");
        Files.writeString(key, JoinKey.generate() + "\n");
        Files.setPosixFilePermissions(key, PosixFilePermissions.fromString("rw-------"));
        final String port = Integer.toString(LoopbackPorts.tcpPorts(1).get(0));
        final List<String> train = new ArrayList<>(List.of("train"));
        train.addAll(List.of(TINY));
        train.addAll(List.of("--run-name", "hybrid", "--runs-dir", runs.toString(), "--steps", "12"));
        final List<String> node1 = new ArrayList<>(List.of("launch", "--nnodes", "2", "--node-rank", "1", "--nproc-per-node", "2",
            "--master-port", port, "--join-key-file", key.toString()));
        node1.addAll(train);
        final Path node1Log = runs.resolve("node1.log");
        final Process other = new ProcessBuilder(WorkerProcesses.javaCommand(WorkerProcesses.inheritedJvmFlags(), Main.class.getName(),
            node1)).redirectErrorStream(true).redirectOutput(node1Log.toFile()).start();
        try {
            final List<String> node0 = new ArrayList<>(List.of("launch", "--nnodes", "2", "--node-rank", "0", "--nproc-per-node", "2",
                "--master-port", port, "--join-key-file", key.toString()));
            node0.addAll(train);
            final CliRun hybrid = CliRun.of(node0.toArray(new String[0]));
            assertEquals(0, hybrid.exitCode(), hybrid.out() + hybrid.err() + Files.readString(node1Log));
            assertTrue(other.waitFor(60, TimeUnit.SECONDS), "node 1's launcher ends with the job");
            assertEquals(0, other.exitValue(), Files.readString(node1Log));
            assertTrue(hybrid.out().contains("moeflow launch: transport hybrid: ipc within a node, udp across nodes (auto: 2 nodes;"),
                hybrid.out());
        } finally {
            other.descendants().forEach(ProcessHandle::destroyForcibly);
            other.destroyForcibly();
        }
        for (int rank = 0; rank < 4; rank++) {
            assertTrue(Files.readString(runs.resolve("hybrid").resolve("rank-" + rank + ".log")).contains("moeflow train: rank " + rank
                + " transport hybrid: "), "rank " + rank + " connected over hybrid");
        }

        final List<String> one = new ArrayList<>(List.of("launch", "--nproc-per-node", "4", "--transport", "ipc", "train"));
        one.addAll(List.of(TINY));
        one.addAll(List.of("--run-name", "ipc4", "--runs-dir", runs.toString(), "--steps", "12"));
        final CliRun ipc = CliRun.of(one.toArray(new String[0]));
        assertEquals(0, ipc.exitCode(), ipc.out() + ipc.err());
        for (final String field : FIELDS) {
            final List<String> overHybrid = column(runs.resolve("hybrid"), field);
            assertEquals(12, overHybrid.size(), field);
            assertEquals(column(runs.resolve("ipc4"), field), overHybrid, field + " of every step, 2 nodes over hybrid and 1 over ipc");
        }
    }

    /** One field of every line of the run's metrics.jsonl, as written (so equal strings are equal doubles). */
    private static List<String> column(final Path run, final String field) throws IOException {
        final Pattern value = Pattern.compile("\"" + field + "\":([-0-9.eE]+)");
        return Files.readAllLines(run.resolve("metrics.jsonl")).stream().map(line -> {
            final Matcher m = value.matcher(line);
            assertTrue(m.find(), field + " in " + line);
            return m.group(1);
        }).toList();
    }
}
