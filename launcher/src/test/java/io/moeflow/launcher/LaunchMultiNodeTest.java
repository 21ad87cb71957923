package io.moeflow.launcher;

import static io.moeflow.launcher.LaunchJobTest.allTensors;
import static io.moeflow.launcher.LaunchJobTest.await;
import static io.moeflow.launcher.LaunchJobTest.contains;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import io.moeflow.checkpoint.CheckpointFile;
import io.moeflow.checkpoint.CheckpointStore;
import io.moeflow.checkpoint.Resolution;
import io.moeflow.launcher.launch.JobMaster;
import io.moeflow.launcher.launch.JoinKey;
import io.moeflow.transport.bench.WorkerProcesses;

/**
 * The static multi-node launch on loopback: two {@code moeflow launch} processes, node 0 (master and
 * agent) and node 1 (agent only, its key in MOEFLOW_JOIN_KEY), one worker each. The job equals two
 * workers on one node bit for bit; a node killed with SIGKILL is replaced and the job still equals
 * the uninterrupted run; without restarts the launcher exits 4 naming the node.
 */
@Tag("slow")
@Timeout(value = 600, unit = TimeUnit.SECONDS)
class LaunchMultiNodeTest {
    /** Tiny and short, one compute thread per worker (two cores), a checkpoint every 50 steps. */
    private static final String[] TRAIN = CliRun.concat(CliRun.TINY, "--threads", "1", "--steps", "400", "--save-every", "50",
        "--eval-every", "0", "--eval-samples", "0", "--samples", "0");
    /** A job that does not end by itself (for the node-loss tests that end it). */
    private static final String[] ENDLESS = CliRun.concat(CliRun.TINY, "--threads", "1", "--steps", "1000000", "--save-every", "0",
        "--eval-every", "0", "--eval-samples", "0", "--samples", "0");

    @TempDir
    Path runs;

    private final String key = JoinKey.generate();
    private final List<Process> started = new ArrayList<>();

    @AfterEach
    void stopEverything() {
        for (final Process p : started) {
            p.descendants().forEach(ProcessHandle::destroyForcibly);
            p.destroyForcibly();
        }
    }

    /** Starts {@code moeflow launch} as node {@code rank} of 2 (one worker), its output in {@code <runs>/<name>.node<rank>.log}. */
    private Process node(final int rank, final String name, final int port, final String... launchOptions) throws IOException {
        return nodeTraining(rank, name, port, TRAIN, launchOptions);
    }

    /** As {@link #node}, with other train options. */
    private Process nodeTraining(final int rank, final String name, final int port, final String[] train, final String... launchOptions)
        throws IOException {
        final List<String> args = new ArrayList<>(List.of("launch", "--nnodes", "2", "--node-rank", Integer.toString(rank),
            "--master-port", Integer.toString(port), "--nproc-per-node", "1", "--join-timeout", "60"));
        args.addAll(List.of(launchOptions));
        args.add("train");
        args.addAll(List.of(train));
        args.addAll(List.of("--run-name", name, "--runs-dir", runs.toString()));
        final List<String> command = WorkerProcesses.javaCommand(WorkerProcesses.inheritedJvmFlags(), Main.class.getName(), args);
        final ProcessBuilder builder = new ProcessBuilder(command).redirectErrorStream(true);
        builder.redirectOutput(ProcessBuilder.Redirect.appendTo(log(name, rank).toFile()));
        builder.environment().put(JoinKey.ENV, key);
        final Process p = builder.start();
        started.add(p);
        return p;
    }

    private Path log(final String name, final int rank) {
        return runs.resolve(name + ".node" + rank + ".log");
    }

    private String text(final String name, final int rank) throws IOException {
        return Files.readString(log(name, rank), StandardCharsets.UTF_8);
    }

    private static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getByName("127.0.0.1"))) {
            return s.getLocalPort();
        }
    }

    /** The same job as two workers on one node. */
    private void runOnOneNode(final String name) {
        final List<String> args = new ArrayList<>(List.of("launch", "--nproc-per-node", "2", "train"));
        args.addAll(List.of(TRAIN));
        args.addAll(List.of("--run-name", name, "--runs-dir", runs.toString()));
        final CliRun run = CliRun.of(args.toArray(new String[0]));
        assertEquals(0, run.exitCode(), run.out() + run.err());
    }

    private static int exitCode(final Process p, final String what) throws InterruptedException {
        assertTrue(p.waitFor(300, TimeUnit.SECONDS), what + " did not end within 300 s");
        return p.exitValue();
    }

    private void assertSameModel(final String expected, final String actual) {
        int compared = 0;
        for (final CheckpointFile file : CheckpointFile.values()) {
            final Map<String, Object> a = allTensors(runs.resolve(expected), file);
            final Map<String, Object> b = allTensors(runs.resolve(actual), file);
            assertEquals(a.keySet(), b.keySet());
            for (final String tensor : a.keySet()) {
                assertTrue(Objects.deepEquals(a.get(tensor), b.get(tensor)), file + " " + tensor + " of " + actual + " differs from " + expected);
                compared++;
            }
        }
        assertTrue(compared > 10, "compared " + compared + " tensors");
    }

    @Test
    void shouldTrainOnTwoNodesBitwiseLikeTwoWorkersOnOneNode() throws Exception {
        runOnOneNode("one");
        final int port = freePort();
        final Process node1 = node(1, "two", port); // first: it waits for the master
        final Process node0 = node(0, "two", port);
        assertEquals(0, exitCode(node0, "node 0"), text("two", 0));
        assertEquals(0, exitCode(node1, "node 1"), text("two", 1));
        assertTrue(text("two", 0).contains("moeflow launch: all 2 ranks finished"), text("two", 0));
        assertTrue(text("two", 1).contains("moeflow launch: node 1: the job ended with exit code 0"), text("two", 1));
        assertTrue(Files.readString(runs.resolve("two").resolve("rank-1.log")).contains("(rank 1 of 2, launched"), "node 1's worker");
        assertSameModel("one", "two");
    }

    @Test
    void shouldResumeWithAReplacementForAKilledNodeAndEndLikeTheUninterruptedRun() throws Exception {
        runOnOneNode("one");
        final int port = freePort();
        final Process node0 = node(0, "killed", port, "--max-restarts", "1");
        final Process node1 = node(1, "killed", port);
        await(() -> new CheckpointStore(runs.resolve("killed").resolve("checkpoints")).resolveAuto().isPresent() || !node0.isAlive(), 300,
            "the first checkpoint");
        assertTrue(node0.isAlive(), "the job was still going at its first checkpoint: " + text("killed", 0));
        final List<ProcessHandle> workers1 = node1.descendants().toList();
        node1.destroyForcibly(); // SIGKILL node 1's agent (its launcher)
        assertTrue(node1.waitFor(30, TimeUnit.SECONDS));
        await(() -> workers1.stream().noneMatch(ProcessHandle::isAlive), 30, "node 1's orphaned worker exits");
        final Process replacement = node(1, "killed", port); // as a supervisor would
        assertEquals(0, exitCode(node0, "node 0"), text("killed", 0));
        assertEquals(0, exitCode(replacement, "the replacement of node 1"), text("killed", 1));
        final String out = text("killed", 0);
        assertTrue(out.contains("moeflow launch: node 1 (host " + InetAddress.getLocalHost().getHostName() + ") was lost: its agent's "
            + "connection closed; waiting up to 60 s for a new agent of node 1"), out);
        assertTrue(out.contains("[rank 0] resume: continuing from "), "the restart resumed from a checkpoint: " + out);
        assertSameModel("one", "killed");
    }

    @Test
    void shouldExitWithCode4NamingTheLostNodeWithoutRestarts() throws Exception {
        final int port = freePort();
        final Process node0 = nodeTraining(0, "lost", port, ENDLESS);
        final Process node1 = nodeTraining(1, "lost", port, ENDLESS);
        await(() -> contains(log("lost", 0), "step 1/1000000") || !node0.isAlive(), 120, "the job trains");
        final List<ProcessHandle> workers0 = node0.descendants().toList();
        node1.destroyForcibly();
        assertEquals(4, exitCode(node0, "node 0"), text("lost", 0));
        final String out = text("lost", 0);
        assertTrue(out.contains("moeflow launch: node 1 (host " + InetAddress.getLocalHost().getHostName() + ") was lost: its agent's "
            + "connection closed; no restarts allowed (--max-restarts 0)"), out);
        assertFalse(out.contains("restarting"), out);
        await(() -> workers0.stream().noneMatch(ProcessHandle::isAlive), 30, "node 0's workers were stopped");
    }

    private static void signal(final String signal, final Process p) throws IOException, InterruptedException {
        final Process kill = new ProcessBuilder("kill", "-" + signal, Long.toString(p.pid())).inheritIO().start();
        assertTrue(kill.waitFor(10, TimeUnit.SECONDS) && kill.exitValue() == 0, "kill -" + signal + " " + p.pid());
    }

    @Test
    void shouldStopTheWholeJobAfterTheSameStepWhenOneNodeGetsSigterm() throws Exception {
        final int port = freePort();
        final Process node0 = nodeTraining(0, "term", port, ENDLESS, "--max-restarts", "1");
        final Process node1 = nodeTraining(1, "term", port, ENDLESS);
        await(() -> contains(log("term", 0), "step 1/1000000") || !node0.isAlive(), 120, "the job trains");
        signal("TERM", node1); // e.g. Kubernetes deleting node 1's pod: a stop, not a loss
        final int code = exitCode(node0, "node 0");
        exitCode(node1, "node 1");
        final String out = text("term", 0);
        assertTrue(code != 0 && code != JobMaster.EXIT_AGENT_LOST, "exit code " + code + ": " + out);
        assertTrue(out.contains("moeflow launch: node 1 (host " + InetAddress.getLocalHost().getHostName() + ") got a stop signal"), out);
        assertTrue(out.contains("moeflow launch: stopped by a signal"), out);
        assertFalse(out.contains("was lost") || out.contains("waiting up to"), "a stop is not a loss: " + out);
        final Pattern stoppedAt = Pattern.compile("stopped at step (\\d+)");
        final Matcher rank0 = stoppedAt.matcher(Files.readString(runs.resolve("term").resolve("rank-0.log")));
        final Matcher rank1 = stoppedAt.matcher(Files.readString(runs.resolve("term").resolve("rank-1.log")));
        assertTrue(rank0.find() && rank1.find(), "both ranks stopped and saved");
        assertEquals(rank0.group(1), rank1.group(1), "both ranks stopped after the same step");
        final Resolution newest = new CheckpointStore(runs.resolve("term").resolve("checkpoints")).resolveAuto().orElseThrow();
        assertEquals(Long.parseLong(rank0.group(1)), newest.step(), "the newest complete checkpoint is the stop's: " + newest);
    }

    @Test
    void shouldLoseAHungNodeAfterThreeMissedHeartbeatsAndStopItsWorker() throws Exception {
        final int port = freePort();
        final Process node0 = nodeTraining(0, "hung", port, ENDLESS, "--heartbeat-interval", "0.5");
        final Process node1 = nodeTraining(1, "hung", port, ENDLESS);
        await(() -> contains(log("hung", 0), "step 1/1000000") || !node0.isAlive(), 120, "the job trains");
        final List<ProcessHandle> workers1 = node1.descendants().toList();
        signal("STOP", node1); // node 1's agent hangs: its connection stays open, it stops beating
        try {
            assertEquals(4, exitCode(node0, "node 0"), text("hung", 0));
            final String out = text("hung", 0);
            assertTrue(out.contains("moeflow launch: node 1 (host " + InetAddress.getLocalHost().getHostName() + ") was lost: its agent "
                + "stopped answering (3 heartbeats of 0.5 s missed); no restarts allowed (--max-restarts 0)"), out);
            // its parent is stopped and cannot reap it: a halted worker is a zombie until the parent continues
            await(() -> workers1.stream().allMatch(LaunchMultiNodeTest::ended), 30, "node 1's worker halts: its master closed on it");
        } finally {
            signal("CONT", node1);
        }
        assertEquals(4, exitCode(node1, "node 1"), text("hung", 1));
        assertTrue(text("hung", 1).contains("moeflow launch: node agent 1: the master "), text("hung", 1));
    }

    /** Gone, or a zombie (state Z in /proc/PID/stat: it exited, its parent has not reaped it). */
    private static boolean ended(final ProcessHandle p) {
        try {
            final String stat = Files.readString(Path.of("/proc", Long.toString(p.pid()), "stat"));
            return stat.substring(stat.lastIndexOf(')') + 2).startsWith("Z");
        } catch (final IOException e) {
            return !p.isAlive();
        }
    }
}
