package io.moeflow.launcher.launch;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import io.moeflow.transport.rdma.TransportChoice;

/**
 * The master's decisions, driven over real TCP by a scripted agent and scripted workers in this JVM
 * (no worker JVMs): join, token hand-out, failures, restarts, the generation fence, timeouts.
 */
@Timeout(60)
class JobMasterTest {
    private static final long SECOND_NS = TimeUnit.SECONDS.toNanos(1);
    private static final String ARGS_HASH = "0123456789abcdef";
    private static final long BEAT_NS = TimeUnit.MILLISECONDS.toNanos(200);
    private final String key = JoinKey.generate();
    private final ByteArrayOutputStream console = new ByteArrayOutputStream();
    private final List<Message> steps = new CopyOnWriteArrayList<>();

    private LaunchPlan plan(final int maxRestarts, final long joinTimeoutNs) {
        return plan(maxRestarts, joinTimeoutNs, "auto");
    }

    private LaunchPlan plan(final int maxRestarts, final long joinTimeoutNs, final String transport) {
        return new LaunchPlan("job", 1, 2, maxRestarts, joinTimeoutNs, 5 * SECOND_NS, 60 * SECOND_NS, 2 * SECOND_NS, 1408, ARGS_HASH,
            List.of("train", "--steps", "10"), List.of("--resume", "auto"), Path.of("runs", "job"), 10, transport);
    }

    private CompletableFuture<Integer> master(final RendezvousServer server, final LaunchPlan plan) {
        final PrintStream out = new PrintStream(console, true, StandardCharsets.UTF_8);
        return CompletableFuture.supplyAsync(() -> {
            try {
                return new JobMaster(plan, server, out, steps::add).run();
            } catch (final InterruptedException e) {
                throw new IllegalStateException(e);
            }
        });
    }

    private Connection agent(final RendezvousServer server) throws IOException {
        final Connection agent = Connection.open("127.0.0.1", server.port(), 5 * SECOND_NS);
        agent.send(Message.of("AGENT", "node", 0, "nproc", 2, "key", key, "args", ARGS_HASH));
        assertEquals("JOB", receive(agent).verb());
        return agent;
    }

    private Connection worker(final RendezvousServer server, final int gen, final int rank, final String joinKey) throws IOException {
        final Connection worker = Connection.open("127.0.0.1", server.port(), 5 * SECOND_NS);
        worker.send(Message.of("WORKER", "gen", gen, "rank", rank, "key", joinKey, "addr", "127.0.0.1", "port", 40000 + rank));
        return worker;
    }

    private Connection worker(final RendezvousServer server, final int gen, final int rank, final String joinKey,
                              final Map<String, String> where) throws IOException {
        final Connection worker = Connection.open("127.0.0.1", server.port(), 5 * SECOND_NS);
        final Map<String, String> hello = new java.util.LinkedHashMap<>(Map.of("gen", "" + gen, "rank", "" + rank, "key", joinKey));
        hello.putAll(where);
        worker.send(new Message("WORKER", hello));
        return worker;
    }

    /** The next message that is not a heartbeat. */
    private static Message receive(final Connection c) throws IOException {
        while (true) {
            final Message m = c.receive(10 * SECOND_NS).orElseThrow(() -> new AssertionError("no message within 10 s"));
            if (!m.verb().equals("HEARTBEAT")) {
                return m;
            }
        }
    }

    /** Waits (at most 10 s) until the master's console holds {@code text}. */
    private void awaitConsole(final String text) throws InterruptedException {
        final long deadline = System.nanoTime() + 10 * SECOND_NS;
        while (!console.toString(StandardCharsets.UTF_8).contains(text) && System.nanoTime() < deadline) {
            Thread.sleep(10);
        }
        assertTrue(console.toString(StandardCharsets.UTF_8).contains(text), console.toString(StandardCharsets.UTF_8));
    }

        /** A plan of {@code nnodes} nodes of one worker that beat every 200 ms. */
    private static LaunchPlan nodesPlan(final int nnodes, final int maxRestarts, final long joinTimeoutNs) {
        return new LaunchPlan("job", nnodes, 1, maxRestarts, joinTimeoutNs, 5 * SECOND_NS, BEAT_NS, 2 * SECOND_NS, 1408, ARGS_HASH,
            List.of("train", "--steps", "10"), List.of("--resume", "auto"), Path.of("runs", "job"), 10, "auto");
    }

    /** Says hello as the agent of {@code node} (one worker) and returns the connection and the master's answer. */
    private Connection hello(final RendezvousServer server, final int node, final String argsHash) throws IOException {
        return hello(server, node, argsHash, "no: not probed in this test");
    }

    private Connection hello(final RendezvousServer server, final int node, final String argsHash, final String rdma)
        throws IOException {
        final Connection agent = Connection.open("127.0.0.1", server.port(), 5 * SECOND_NS);
        agent.send(Message.of("AGENT", "node", node, "nnodes", 2, "nproc", 1, "key", key, "args", argsHash, "pid", 100 + node,
            "host", "h" + node, "rdma", rdma));
        return agent;
    }

    /** A fake agent that beats the master every 100 ms until stopped (or the connection closes). */
    private static final class Beats implements AutoCloseable {
        private final Thread thread;
        private volatile boolean stopped;

        Beats(final Connection agent) {
            thread = new Thread(() -> {
                while (!stopped) {
                    try {
                        agent.send(Message.of("HEARTBEAT"));
                        Thread.sleep(100);
                    } catch (final IOException | InterruptedException e) {
                        return;
                    }
                }
            });
            thread.setDaemon(true);
            thread.start();
        }

        @Override
        public void close() {
            stopped = true;
        }
    }

    /** True once the master closed {@code c} (heartbeats and other lines before the end are skipped). */
    private static boolean closedByMaster(final Connection c) throws IOException {
        final long deadline = System.nanoTime() + 10 * SECOND_NS;
        try {
            while (System.nanoTime() < deadline) {
                c.receive(SECOND_NS);
            }
            return false;
        } catch (final java.io.EOFException e) {
            return true;
        }
    }

    @Test
    void shouldHandTheSameTokenToEveryRankOnceAllHaveJoinedAndFinishWhenAllExitCleanly() throws Exception {
        try (RendezvousServer server = RendezvousServer.bind("127.0.0.1", 0, key)) {
            final CompletableFuture<Integer> result = master(server, plan(0, 10 * SECOND_NS));
            final Connection agent = agent(server);
            final Message start = receive(agent);
            assertEquals("START", start.verb());
            assertEquals(List.of("train", "--steps", "10"), JobMaster.splitArgs(start.get("args")));
            final Connection w0 = worker(server, 0, 0, key);
            final Connection w1 = worker(server, 0, 1, key);
            final Message ready0 = receive(w0);
            final Message ready1 = receive(w1);
            assertEquals("READY", ready0.verb());
            assertEquals(ready0.get("token"), ready1.get("token"));
            assertEquals(64, ready0.get("token").length(), "a 32-byte token in hex");
            w0.send(Message.of("STEP", "step", 1, "loss", 5.5, "ce", 5.4, "lr", 1e-4, "stage", "basic", "stageIndex", 0, "tps", 1000,
                "tokens", 128, "samples", 4));
            final long deadline = System.nanoTime() + 10 * SECOND_NS;
            while (steps.isEmpty() && System.nanoTime() < deadline) {
                Thread.sleep(10);
            }
            agent.send(Message.of("EXIT", "gen", 0, "rank", 0, "code", 0));
            agent.send(Message.of("EXIT", "gen", 0, "rank", 1, "code", 0));
            assertEquals(0, result.get(10, TimeUnit.SECONDS));
            assertEquals("END", receive(agent).verb());
            assertEquals(1, steps.size(), "rank 0's step reached the progress line");
            assertEquals(128, steps.get(0).getLong("tokens"));
        }
    }

    @Test
    void shouldRestartTheGroupWithResumeAfterAWorkerFailsAndCountRestartsForTheWholeJob() throws Exception {
        try (RendezvousServer server = RendezvousServer.bind("127.0.0.1", 0, key)) {
            final CompletableFuture<Integer> result = master(server, plan(1, 10 * SECOND_NS));
            final Connection agent = agent(server);
            for (int gen = 0; gen < 2; gen++) {
                final Message start = receive(agent);
                assertEquals(gen, start.getInt("gen"));
                final List<String> args = JobMaster.splitArgs(start.get("args"));
                assertEquals(gen > 0, args.containsAll(List.of("--resume", "auto")), "restarts resume: " + args);
                worker(server, gen, 0, key);
                worker(server, gen, 1, key);
                agent.send(Message.of("EXIT", "gen", gen, "rank", 1, "code", 137, "reason", "killed by SIGKILL (exit code 137)"));
                final Message stop = receive(agent);
                assertEquals("STOP", stop.verb());
                assertEquals(gen, stop.getInt("gen"));
                agent.send(Message.of("STOPPED", "gen", gen));
            }
            assertEquals(137, result.get(10, TimeUnit.SECONDS), "the first failing worker's exit code once no restart is left");
            final String text = console.toString(StandardCharsets.UTF_8);
            assertTrue(text.contains("rank 1 failed: killed by SIGKILL (exit code 137); restarting the group from the newest complete "
                + "checkpoint (restart 1 of 1)"), text);
            assertTrue(text.contains("no restarts left: 1 of --max-restarts 1 used"), text);
        }
    }

    @Test
    void shouldNameTheRankThatDidNotJoinWithinTheTimeoutAndNotRestartIt() throws Exception {
        try (RendezvousServer server = RendezvousServer.bind("127.0.0.1", 0, key)) {
            final long startNs = System.nanoTime();
            final CompletableFuture<Integer> result = master(server, plan(3, 2 * SECOND_NS));
            final Connection agent = agent(server);
            receive(agent); // START
            worker(server, 0, 0, key);
            assertEquals("STOP", receive(agent).verb());
            agent.send(Message.of("STOPPED", "gen", 0));
            assertEquals(JobMaster.EXIT_NOT_STARTED, result.get(10, TimeUnit.SECONDS));
            assertTrue(System.nanoTime() - startNs < 30 * SECOND_NS, "reported soon after the 2 s join timeout");
            final String text = console.toString(StandardCharsets.UTF_8);
            assertTrue(text.contains("rank(s) [1] did not join the rendezvous within 2 s"), text);
            assertTrue(!text.contains("restarting"), "a worker that never joins is not worth a restart: " + text);
        }
    }

    @Test
    void shouldRejectAWrongJoinKeyAndAStaleGeneration() throws Exception {
        try (RendezvousServer server = RendezvousServer.bind("127.0.0.1", 0, key)) {
            final CompletableFuture<Integer> result = master(server, plan(0, 10 * SECOND_NS));
            final Connection agent = agent(server);
            receive(agent); // START gen 0
            final Message wrongKey = receive(worker(server, 0, 0, JoinKey.generate()));
            assertEquals("REJECT", wrongKey.verb());
            assertTrue(wrongKey.get("reason").contains("wrong join key"), wrongKey.get("reason"));
            final Message stale = receive(worker(server, 7, 0, key));
            assertEquals("REJECT", stale.verb());
            assertTrue(stale.get("reason").contains("stale"), stale.get("reason"));
            worker(server, 0, 0, key);
            worker(server, 0, 1, key);
            agent.send(Message.of("EXIT", "gen", 0, "rank", 0, "code", 0));
            agent.send(Message.of("EXIT", "gen", 0, "rank", 1, "code", 0));
            assertEquals(0, result.get(10, TimeUnit.SECONDS));
        }
    }

    @Test
    void shouldSayWhatToDoWhenThePortIsBusy() throws Exception {
        try (RendezvousServer first = RendezvousServer.bind("127.0.0.1", 0, key)) {
            final IllegalArgumentException e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                () -> RendezvousServer.bind("127.0.0.1", first.port(), key));
            assertTrue(e.getMessage().startsWith("--master-port " + first.port() + ": cannot listen on 127.0.0.1:" + first.port()), e.getMessage());
            assertTrue(e.getMessage().contains("pick another with --master-port, or 0 for any free port"), e.getMessage());
        }
    }

    @Test
    void shouldRejectAnAgentWithOtherTrainOptionsASecondAgentOfALiveNodeAndANodeOutsideTheJob() throws Exception {
        try (RendezvousServer server = RendezvousServer.bind("127.0.0.1", 0, key)) {
            final CompletableFuture<Integer> result = master(server, nodesPlan(2, 0, 10 * SECOND_NS));
            final Connection a0 = hello(server, 0, ARGS_HASH);
            assertEquals("JOB", receive(a0).verb());
            try (Beats beats0 = new Beats(a0)) {
                final Message otherArgs = receive(hello(server, 1, "fedcba9876543210"));
                assertEquals("REJECT", otherArgs.verb());
                assertTrue(otherArgs.get("reason").startsWith("train options differ from node 0's"), otherArgs.get("reason"));
                final Message duplicate = receive(hello(server, 0, ARGS_HASH));
                assertEquals("REJECT", duplicate.verb());
                assertTrue(duplicate.get("reason").contains("node 0 already has a live agent (pid 100 on h0)"), duplicate.get("reason"));
                assertEquals("yes", duplicate.get("retry"), "a replacement may arrive before the master saw the old agent go");
                final Message outside = receive(hello(server, 2, ARGS_HASH));
                assertEquals("REJECT", outside.verb());
                assertTrue(outside.get("reason").contains("does not fit this job (2 nodes of 1 workers)"), outside.get("reason"));
                final Connection a1 = hello(server, 1, ARGS_HASH);
                final Message job = receive(a1);
                assertEquals("JOB", job.verb());
                assertEquals(2, job.getInt("world"));
                assertEquals(200, job.getInt("beatMs"));
                assertEquals(2000, job.getInt("boundMs"), "every node takes the failure bound from the master");
                assertEquals(1408, job.getInt("udpMtu"), "and the UDP MTU");
                try (Beats beats1 = new Beats(a1)) {
                    assertEquals(0, receive(a0).getInt("gen"));
                    assertEquals(0, receive(a1).getInt("gen"));
                    final Message late = receive(hello(server, 1, ARGS_HASH));
                    assertEquals("REJECT", late.verb(), "a second agent of live node 1 while the generation runs");
                    worker(server, 0, 0, key);
                    worker(server, 0, 1, key);
                    a0.send(Message.of("EXIT", "gen", 0, "rank", 0, "code", 0));
                    a1.send(Message.of("EXIT", "gen", 0, "rank", 1, "code", 0));
                    assertEquals(0, result.get(10, TimeUnit.SECONDS));
                    assertEquals("END", receive(a1).verb());
                }
            }
        }
    }

    @Test
    void shouldDeclareANodeLostAfterThreeMissedHeartbeatsAndRestartOnlyWithAReplacementOfThatNode() throws Exception {
        try (RendezvousServer server = RendezvousServer.bind("127.0.0.1", 0, key)) {
            final CompletableFuture<Integer> result = master(server, nodesPlan(2, 1, 10 * SECOND_NS));
            final Connection a0 = hello(server, 0, ARGS_HASH);
            assertEquals("JOB", receive(a0).verb());
            try (Beats beats0 = new Beats(a0)) {
                final Connection a1 = hello(server, 1, ARGS_HASH);
                assertEquals("JOB", receive(a1).verb());
                final Beats beats1 = new Beats(a1);
                assertEquals("START", receive(a0).verb());
                assertEquals("START", receive(a1).verb());
                final Connection w0 = worker(server, 0, 0, key);
                final Connection w1 = worker(server, 0, 1, key);
                beats1.close(); // node 1's agent hangs: connected, silent
                final Message stop = receive(a0);
                assertEquals("STOP", stop.verb(), "the master stops the surviving node's workers");
                assertEquals(0, stop.getInt("gen"));
                a0.send(Message.of("STOPPED", "gen", 0));
                assertTrue(closedByMaster(a1), "the master dropped the silent agent");
                assertTrue(closedByMaster(w1), "the master dropped the stopped generation's workers: node 1's halts without its agent");
                assertTrue(closedByMaster(w0));
                final String lost = "node 1 (host h1) was lost: its agent stopped answering (3 heartbeats of 0.2 s missed); waiting up to"
                    + " 10 s for a new agent of node 1 (host h1), then restarting the group from the newest complete checkpoint (restart 1"
                    + " of 1)";
                awaitConsole(lost);

                final Message notLost = receive(hello(server, 0, ARGS_HASH));
                assertEquals("REJECT", notLost.verb(), "only the lost node may be replaced");
                final Connection replacement = hello(server, 1, ARGS_HASH);
                assertEquals("JOB", receive(replacement).verb());
                try (Beats beats2 = new Beats(replacement)) {
                    final Message start0 = receive(a0);
                    final Message start1 = receive(replacement);
                    assertEquals(1, start0.getInt("gen"));
                    assertEquals(1, start1.getInt("gen"));
                    assertTrue(JobMaster.splitArgs(start1.get("args")).containsAll(List.of("--resume", "auto")), start1.get("args"));
                    final Message stale = receive(worker(server, 0, 1, key));
                    assertEquals("REJECT", stale.verb(), "a worker of the lost generation");
                    assertTrue(stale.get("reason").contains("generation 0 is stale"), stale.get("reason"));
                    worker(server, 1, 0, key);
                    worker(server, 1, 1, key);
                    a0.send(Message.of("EXIT", "gen", 0, "rank", 0, "code", 1)); // stale: ignored
                    a0.send(Message.of("EXIT", "gen", 1, "rank", 0, "code", 0));
                    replacement.send(Message.of("EXIT", "gen", 1, "rank", 1, "code", 0));
                    assertEquals(0, result.get(10, TimeUnit.SECONDS), console.toString(StandardCharsets.UTF_8));
                }
            }
        }
    }

    @Test
    void shouldEndWithExitCode4NamingTheNodeWhenANodeIsLostWithoutRestartsLeft() throws Exception {
        try (RendezvousServer server = RendezvousServer.bind("127.0.0.1", 0, key)) {
            final CompletableFuture<Integer> result = master(server, nodesPlan(2, 0, 10 * SECOND_NS));
            final Connection a0 = hello(server, 0, ARGS_HASH);
            assertEquals("JOB", receive(a0).verb());
            try (Beats beats0 = new Beats(a0)) {
                final Connection a1 = hello(server, 1, ARGS_HASH);
                assertEquals("JOB", receive(a1).verb());
                assertEquals("START", receive(a0).verb());
                a1.close(); // node 1's agent was killed
                assertEquals("STOP", receive(a0).verb());
                a0.send(Message.of("STOPPED", "gen", 0));
                assertEquals(JobMaster.EXIT_AGENT_LOST, result.get(10, TimeUnit.SECONDS));
                final Message end = receive(a0);
                assertEquals("END", end.verb());
                assertEquals(JobMaster.EXIT_AGENT_LOST, end.getInt("code"), "node 0's launcher exits with the job's code");
                final String text = console.toString(StandardCharsets.UTF_8);
                assertTrue(text.contains("moeflow launch: node 1 (host h1) was lost: its agent's connection closed; no restarts allowed "
                    + "(--max-restarts 0)"), text);
            }
        }
    }

    @Test
    void shouldGiveUpNamingTheNodeWhenNoReplacementJoinsInTime() throws Exception {
        try (RendezvousServer server = RendezvousServer.bind("127.0.0.1", 0, key)) {
            final CompletableFuture<Integer> result = master(server, nodesPlan(2, 3, 2 * SECOND_NS));
            final Connection a0 = hello(server, 0, ARGS_HASH);
            assertEquals("JOB", receive(a0).verb());
            try (Beats beats0 = new Beats(a0)) {
                final Connection a1 = hello(server, 1, ARGS_HASH);
                assertEquals("JOB", receive(a1).verb());
                assertEquals("START", receive(a0).verb());
                a1.close();
                assertEquals("STOP", receive(a0).verb());
                a0.send(Message.of("STOPPED", "gen", 0));
                assertEquals(JobMaster.EXIT_AGENT_LOST, result.get(20, TimeUnit.SECONDS));
                final String text = console.toString(StandardCharsets.UTF_8);
                assertTrue(text.contains("moeflow launch: no new agent of node 1 (host h1) joined within 2 s after it was lost"), text);
            }
        }
    }

    @Test
    void shouldTellEveryWorkerTheChosenTransportAndEveryRanksEndpoint() throws Exception {
        try (RendezvousServer server = RendezvousServer.bind("127.0.0.1", 0, key)) {
            final CompletableFuture<Integer> result = master(server, plan(0, 10 * SECOND_NS, "udp"));
            final Connection agent = agent(server);
            receive(agent); // START
            final Message noAddress = receive(worker(server, 0, 0, key, Map.of()));
            assertEquals("REJECT", noAddress.verb(), "a worker that does not say where it receives");
            assertTrue(noAddress.get("reason").contains("field 'port' is missing"), noAddress.get("reason"));
            final Connection w1 = worker(server, 0, 1, key, Map.of("addr", "::1", "port", "40001"));
            final Connection w0 = worker(server, 0, 0, key, Map.of("addr", "127.0.0.1", "port", "40000"));
            final WorkerTransport expected = new WorkerTransport(TransportChoice.Kind.UDP, List.of("127.0.0.1:40000", "[::1]:40001"),
                new int[] {0, 0}, List.of());
            for (final Connection w : List.of(w0, w1)) {
                final Message ready = receive(w);
                assertEquals("udp", ready.get("transport"));
                assertEquals("127.0.0.1:40000,[::1]:40001", ready.get("endpoints"));
                assertEquals("0,0", ready.get("nodes"));
                assertEquals(expected, WorkerTransport.ofReady(ready));
            }
            agent.send(Message.of("EXIT", "gen", 0, "rank", 0, "code", 0));
            agent.send(Message.of("EXIT", "gen", 0, "rank", 1, "code", 0));
            assertEquals(0, result.get(10, TimeUnit.SECONDS));
            assertTrue(console.toString(StandardCharsets.UTF_8).contains("moeflow launch: transport udp between every pair of ranks"
                + " (--transport udp)"), console.toString(StandardCharsets.UTF_8));
        }
    }

    @Test
    void shouldFailTransportRdmaAtStartNamingTheNodeThatLacksIt() throws Exception {
        try (RendezvousServer server = RendezvousServer.bind("127.0.0.1", 0, key)) {
            final CompletableFuture<Integer> result = master(server, plan(0, 10 * SECOND_NS, "rdma"));
            final Connection agent = Connection.open("127.0.0.1", server.port(), 5 * SECOND_NS);
            agent.send(Message.of("AGENT", "node", 0, "nproc", 2, "key", key, "args", ARGS_HASH, "host", "gpu-1", "rdma",
                "no: librdmacm.so.1 (apt-get install librdmacm1, or dnf install librdmacm)"));
            assertEquals("JOB", receive(agent).verb());
            assertEquals(JobMaster.EXIT_BAD_TRANSPORT, result.get(10, TimeUnit.SECONDS));
            assertEquals("END", receive(agent).verb(), "no generation started");
            assertEquals("moeflow launch: --transport rdma: node 0 (host gpu-1): RDMA unavailable: librdmacm.so.1 (apt-get install "
                + "librdmacm1, or dnf install librdmacm) (or use --transport auto to fall back to ipc)",
                console.toString(StandardCharsets.UTF_8).strip());
        }
    }

    @Test
    void shouldChooseRdmaWhenEveryNodeHasItAndHandEveryRankTheRdmaAddresses() throws Exception {
        try (RendezvousServer server = RendezvousServer.bind("127.0.0.1", 0, key)) {
            final CompletableFuture<Integer> result = master(server, plan(0, 10 * SECOND_NS, "auto"));
            final Connection agent = Connection.open("127.0.0.1", server.port(), 5 * SECOND_NS);
            agent.send(Message.of("AGENT", "node", 0, "nproc", 2, "key", key, "args", ARGS_HASH, "host", "gpu-1", "rdma", "yes"));
            assertEquals("JOB", receive(agent).verb());
            assertEquals("START", receive(agent).verb());
            final Message noRdma = receive(worker(server, 0, 0, key, Map.of("addr", "10.0.0.1", "port", "40000")));
            assertEquals("REJECT", noRdma.verb(), "rdma was chosen: a worker must say where it receives RDMA");
            assertTrue(noRdma.get("reason").contains("field 'rdma' is missing"), noRdma.get("reason"));
            final Connection w0 = worker(server, 0, 0, key, Map.of("addr", "10.0.0.1", "port", "40000", "rdma", "10.0.0.1:7471"));
            final Connection w1 = worker(server, 0, 1, key, Map.of("addr", "10.0.0.1", "port", "40001", "rdma", "10.0.0.1:7472"));
            for (final Connection w : List.of(w0, w1)) {
                final WorkerTransport ready = WorkerTransport.ofReady(receive(w));
                assertEquals(TransportChoice.Kind.RDMA, ready.kind());
                assertEquals(List.of("10.0.0.1:7471", "10.0.0.1:7472"), ready.rdmaAddresses());
            }
            agent.send(Message.of("EXIT", "gen", 0, "rank", 0, "code", 0));
            agent.send(Message.of("EXIT", "gen", 0, "rank", 1, "code", 0));
            assertEquals(0, result.get(10, TimeUnit.SECONDS));
            assertTrue(console.toString(StandardCharsets.UTF_8).contains("moeflow launch: transport rdma (auto: this node has a device,"
                + " libibverbs, librdmacm and libdisni)"), console.toString(StandardCharsets.UTF_8));
        }
    }

    @Test
    void shouldCheckTheProbeOfANodesReplacementBeforeRestartingOverRdma() throws Exception {
        try (RendezvousServer server = RendezvousServer.bind("127.0.0.1", 0, key)) {
            final LaunchPlan rdma = new LaunchPlan("job", 2, 1, 1, 10 * SECOND_NS, 5 * SECOND_NS, BEAT_NS, 2 * SECOND_NS, 1408, ARGS_HASH,
                List.of("train", "--steps", "10"), List.of("--resume", "auto"), Path.of("runs", "job"), 10, "rdma");
            final CompletableFuture<Integer> result = master(server, rdma);
            final Connection a0 = hello(server, 0, ARGS_HASH, "yes");
            assertEquals("JOB", receive(a0).verb());
            try (Beats beats0 = new Beats(a0)) {
                final Connection a1 = hello(server, 1, ARGS_HASH, "yes");
                assertEquals("JOB", receive(a1).verb());
                assertEquals("START", receive(a0).verb());
                a1.close(); // node 1's agent was killed
                assertEquals("STOP", receive(a0).verb());
                a0.send(Message.of("STOPPED", "gen", 0));
                awaitConsole("waiting up to"); // a replacement that comes earlier is told to retry, as a real agent would
                final Connection replacement = hello(server, 1, ARGS_HASH, "no: libdisni (UnsatisfiedLinkError: no disni)");
                assertEquals("JOB", receive(replacement).verb());
                assertEquals(JobMaster.EXIT_BAD_TRANSPORT, result.get(20, TimeUnit.SECONDS));
                final String text = console.toString(StandardCharsets.UTF_8);
                assertTrue(text.contains("moeflow launch: --transport rdma: node 1 (host h1): RDMA unavailable: libdisni"), text);
            }
        }
    }
}
