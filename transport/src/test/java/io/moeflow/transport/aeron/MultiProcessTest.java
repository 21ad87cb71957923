package io.moeflow.transport.aeron;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import io.moeflow.transport.IdleMode;
import io.moeflow.transport.JobToken;
import io.moeflow.transport.bench.WorkerProcesses;

/** Real worker JVMs on one host: collectives over IPC and UDP loopback, a killed worker, an impostor. */
@Tag("slow")
@Timeout(value = 180, unit = TimeUnit.SECONDS)
class MultiProcessTest {
    private static final long WAIT_NS = TimeUnit.SECONDS.toNanos(120);

    private static List<String> worker(final AeronTestJob job, final String mode, final int rank, final int size,
                                       final String dir, final String endpoints, final Path token, final String role,
                                       final String... extra) {
        final List<String> args = new ArrayList<>(List.of("mode=" + mode, "rank=" + rank, "size=" + size, "dir=" + dir,
            "endpoints=" + endpoints, "job=" + job.jobId, "token=" + token, "role=" + role,
            "result=" + job.root.resolve("result-" + role + "-" + rank)));
        args.addAll(List.of(extra));
        return WorkerProcesses.javaCommand(WorkerProcesses.inheritedJvmFlags(), CollectiveWorkerMain.class.getName(), args);
    }

    private static Path tokenFile(final AeronTestJob job, final String name, final JobToken token) throws Exception {
        final Path file = job.root.resolve(name);
        token.writeTo(file);
        return file;
    }

    private static String failure(final WorkerProcesses workers, final int[] codes) {
        final StringBuilder sb = new StringBuilder("exit codes " + java.util.Arrays.toString(codes));
        for (int i = 0; i < workers.size(); i++) {
            sb.append("\n--- worker ").append(i).append(":\n").append(workers.tail(i, 30));
        }
        return sb.toString();
    }

    @Test
    void shouldAgreeBitForBitAcrossWorkerJvmsOverIpc() throws Exception {
        try (AeronTestJob job = new AeronTestJob(); JobMediaDriver driver = JobMediaDriver.launch(job.ipcDirectory(), IdleMode.BACKOFF)) {
            assertWorkersMatchInProcess(job, "ipc", 3, rank -> job.ipcDirectory(), "");
        }
    }

    @Test
    void shouldAgreeBitForBitAcrossWorkerJvmsOverUdp() throws Exception {
        try (AeronTestJob job = new AeronTestJob()) {
            final String endpoints = String.join(",", io.moeflow.transport.bench.LoopbackPorts.udpEndpoints(2));
            assertWorkersMatchInProcess(job, "udp", 2, rank -> job.root.resolve("aeron-udp-" + rank).toString(), endpoints);
        }
    }

    /** Runs the collectives script in {@code p} worker JVMs and compares each rank's result hash with the in-process run. */
    private static void assertWorkersMatchInProcess(final AeronTestJob job, final String mode, final int p,
                                                    final java.util.function.IntFunction<String> dir, final String endpoints)
        throws Exception {
        final Path token = tokenFile(job, "job.token", job.token);
        final List<List<String>> commands = new ArrayList<>();
        for (int r = 0; r < p; r++) {
            commands.add(worker(job, mode, r, p, dir.apply(r), endpoints, token, "collectives"));
        }
        try (WorkerProcesses workers = WorkerProcesses.start(commands, job.root.resolve("logs"), null)) {
            final int[] codes = workers.awaitAll(WAIT_NS);
            assertArrayEquals(new int[p], codes, failure(workers, codes));
        }
        final float[][] expected = AeronCollectivesTest.runInProcess(p);
        for (int r = 0; r < p; r++) {
            final String result = CollectiveWorkerMain.read(job.root.resolve("result-collectives-" + r));
            assertEquals(CollectiveWorkerMain.sha256(expected[r]), result.lines().findFirst().orElse(""), "rank " + r + ": " + result);
        }
    }

    @Test
    void shouldNameTheKilledRankOnEverySurvivorOverIpcWithThreeRanks() throws Exception {
        assertSurvivorsNameTheKilledRank("ipc", 3, 1);
    }

    @Test
    void shouldNameTheKilledRankOnEverySurvivorOverIpcWithFourRanks() throws Exception {
        assertSurvivorsNameTheKilledRank("ipc", 4, 2);
    }

    @Test
    void shouldNameTheKilledRankOnEverySurvivorOverHybridWithTwoNodesOfTwoRanks() throws Exception {
        // rank 1's node peer (rank 0) loses it over IPC, ranks 2 and 3 over UDP
        assertSurvivorsNameTheKilledRank("hybrid", 4, 1);
    }

    @Test
    void shouldNameTheKilledRankOnEverySurvivorOverUdpWithThreeRanks() throws Exception {
        assertSurvivorsNameTheKilledRank("udp", 3, 2);
    }

    @Test
    void shouldNameTheKilledRankOnEverySurvivorOverUdpWithFourRanks() throws Exception {
        assertSurvivorsNameTheKilledRank("udp", 4, 1);
    }

    /**
     * Runs {@code p} workers in a training-like loop (async bulk all-reduce, urgent all-reduce,
     * blocking ring all-reduce), kills {@code victim} with SIGKILL, and demands that every survivor's
     * current operation and its next one fail naming the victim as DISCONNECTED. The operation
     * timeout is 60 s, so no survivor can get there by timing out (which would name whichever rank it
     * waited for); the time from the kill to each survivor's failure is printed (the failure bound,
     * 2 s by default, is not asserted on a shared machine).
     */
    private static void assertSurvivorsNameTheKilledRank(final String mode, final int p, final int victim) throws Exception {
        final int[] nodes = new int[p]; // hybrid: two ranks per node
        for (int r = 0; r < p; r++) {
            nodes[r] = r / 2;
        }
        try (AeronTestJob job = new AeronTestJob();
             JobMediaDriver driver = "ipc".equals(mode) ? JobMediaDriver.launch(job.ipcDirectory(), IdleMode.BACKOFF) : null;
             AeronHybridTest.NodeDrivers nodeDrivers = "hybrid".equals(mode) ? new AeronHybridTest.NodeDrivers(job, nodes) : null) {
            final Path token = tokenFile(job, "job.token", job.token);
            final String endpoints = "ipc".equals(mode) ? "" : String.join(",", io.moeflow.transport.bench.LoopbackPorts.udpEndpoints(p));
            final List<List<String>> commands = new ArrayList<>();
            for (int r = 0; r < p; r++) {
                final String own = job.root.resolve("aeron-udp-" + r).toString();
                final String dir = switch (mode) {
                    case "ipc" -> job.ipcDirectory();
                    case "hybrid" -> job.nodeDirectory(nodes[r]);
                    default -> own;
                };
                commands.add(worker(job, mode, r, p, dir, endpoints, token, "loop", "opTimeoutS=60", "own=" + own,
                    "nodes=" + java.util.Arrays.stream(nodes).mapToObj(String::valueOf).collect(java.util.stream.Collectors.joining(","))));
            }
            try (WorkerProcesses workers = WorkerProcesses.start(commands, job.root.resolve("logs"), null)) {
                final long deadline = System.nanoTime() + WAIT_NS;
                for (int r = 0; r < p; r++) {
                    final Path started = job.root.resolve("result-loop-" + r);
                    while (!Files.exists(started) && System.nanoTime() < deadline && workers.process(r).isAlive()) {
                        Thread.sleep(20);
                    }
                    assertTrue(Files.exists(started), "worker " + r + " never started looping: " + workers.tail(r, 30));
                }
                final long killedAtMs = System.currentTimeMillis();
                workers.process(victim).destroyForcibly(); // SIGKILL: no goodbye, no ABORT from the victim
                final int[] codes = workers.awaitAll(WAIT_NS);
                final StringBuilder latencies = new StringBuilder();
                for (int r = 0; r < p; r++) {
                    if (r == victim) {
                        continue;
                    }
                    final String result = CollectiveWorkerMain.read(job.root.resolve("result-loop-" + r));
                    assertEquals(3, codes[r], "rank " + r + ": " + result + "\n" + failure(workers, codes));
                    final String[] lines = result.split("\n", 3);
                    assertTrue(lines[0].startsWith("FAILED peer=" + victim + " reason=DISCONNECTED "), "rank " + r + ": " + result);
                    assertEquals("NEXT peer=" + victim + " reason=DISCONNECTED", lines[1], "rank " + r + "'s next operation");
                    final long failedAtMs = Long.parseLong(lines[0].substring(lines[0].indexOf("atMs=") + 5).trim());
                    latencies.append(" rank ").append(r).append(": ").append(failedAtMs - killedAtMs).append(" ms");
                }
                System.out.println("MultiProcessTest " + mode + " " + p + " ranks, rank " + victim
                    + " killed; survivors failed after" + latencies);
            }
        }
    }

    @Test
    void shouldRejectAnImpostorJvmAndFinishTheJob() throws Exception {
        try (AeronTestJob job = new AeronTestJob(); JobMediaDriver driver = JobMediaDriver.launch(job.ipcDirectory(), IdleMode.BACKOFF)) {
            final Path token = tokenFile(job, "job.token", job.token);
            final Path wrongToken = tokenFile(job, "stale.token", JobToken.generate());
            final Path stop = job.root.resolve("stop");
            final List<List<String>> commands = new ArrayList<>();
            for (int r = 0; r < 2; r++) {
                commands.add(worker(job, "ipc", r, 2, job.ipcDirectory(), "", token, "counted", "stop=" + stop));
            }
            try (WorkerProcesses workers = WorkerProcesses.start(commands, job.root.resolve("logs"), null);
                 WorkerProcesses impostor = WorkerProcesses.start(List.of(worker(job, "ipc", 1, 2, job.ipcDirectory(), "",
                     wrongToken, "impostor")), job.root.resolve("impostor-logs"), null)) {
                final int[] impostorCode = impostor.awaitAll(WAIT_NS);
                Files.writeString(stop, "stop");
                final int[] codes = workers.awaitAll(WAIT_NS);
                assertArrayEquals(new int[2], codes, failure(workers, codes));
                assertEquals(4, impostorCode[0], failure(impostor, impostorCode));
                final String refusal = CollectiveWorkerMain.read(job.root.resolve("result-impostor-1"));
                assertTrue(refusal.contains("REFUSED rank 1: no authenticated connection with rank(s) [0]"), refusal);
                final String counted = CollectiveWorkerMain.read(job.root.resolve("result-counted-0"));
                assertTrue(counted.matches("handshakesRejected=[1-9][0-9]*"), counted);
            }
        }
    }
}
