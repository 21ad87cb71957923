package io.moeflow.launcher.launch;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * A node agent against a scripted master over real TCP (no worker JVM is started): its hello, the
 * generation fence, the shared-storage check, heartbeats and the loss of its master.
 */
@Timeout(60)
class NodeAgentTest {
    private static final long SECOND_NS = TimeUnit.SECONDS.toNanos(1);
    private final String key = JoinKey.generate();
    private final ByteArrayOutputStream console = new ByteArrayOutputStream();

    @TempDir
    Path runs;

    private NodeAgent agent(final int port, final Path runDir) {
        return new NodeAgent(new NodeAgent.Config("127.0.0.1", port, 1, 2, 1, key, "0123456789abcdef", Path.of("/nonexistent/java"),
            List.of(), "", "io.moeflow.launcher.Main", runDir, Set.of(), new PrintStream(console, true, StandardCharsets.UTF_8),
            10 * SECOND_NS, 5 * SECOND_NS, -1, null, "auto"));
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

    @Test
    void shouldStopAndSaySoWhenItsMasterStopsAnswering() throws Exception {
        try (ServerSocket master = new ServerSocket(0, 1, InetAddress.getByName("127.0.0.1"))) {
            final NodeAgent agent = agent(master.getLocalPort(), runs);
            final AgentHandle running = agent.startThread();
            try (Connection c = new Connection(master.accept())) {
                final Message hello = receive(c);
                assertEquals("AGENT", hello.verb());
                assertEquals(1, hello.getInt("node"));
                assertEquals(2, hello.getInt("nnodes"));
                assertEquals("0123456789abcdef", hello.get("args"));
                assertEquals(key, hello.get("key"));
                assertFalse(hello.get("host").isBlank());
                c.send(Message.of("JOB", "run", "job", "node", 1, "nnodes", 2, "nproc", 1, "world", 2, "beatMs", 200));
                assertEquals("HEARTBEAT", c.receive(10 * SECOND_NS).orElseThrow().verb(), "the agent beats its master");
                running.await(10 * SECOND_NS); // the master says nothing from now on
            }
            assertTrue(agent.failure() != null && agent.failure().contains("node agent 1: the master at 127.0.0.1:" + master.getLocalPort()
                + " stopped answering (3 heartbeats of 0.2 s missed); stopped this node's workers"), agent.failure());
            assertEquals(NodeAgent.EXIT_MASTER_LOST, agent.exitCode());
        }
    }

    @Test
    void shouldReportARunDirectoryItCannotSeeAndIgnoreAStaleStart() throws Exception {
        try (ServerSocket master = new ServerSocket(0, 1, InetAddress.getByName("127.0.0.1"))) {
            final Path missing = runs.resolve("not-shared");
            final NodeAgent agent = agent(master.getLocalPort(), missing);
            final AgentHandle running = agent.startThread();
            try (Connection c = new Connection(master.accept())) {
                assertEquals("AGENT", receive(c).verb());
                c.send(Message.of("JOB", "run", "job", "node", 1, "nnodes", 2, "nproc", 1, "world", 2, "beatMs", 1000));
                c.send(Message.of("START", "gen", 3, "args", "train"));
                final Message exit = receive(c);
                assertEquals("EXIT", exit.verb());
                assertEquals(3, exit.getInt("gen"));
                assertEquals(1, exit.getInt("rank"), "node 1's first rank");
                assertEquals("yes", exit.get("fatal"), "restarting cannot help");
                assertTrue(exit.get("reason").contains("cannot see the run directory " + missing + ": --runs-dir must be storage every node"
                    + " shares"), exit.get("reason"));
                c.send(Message.of("START", "gen", 2, "args", "train"));
                c.send(Message.of("STOP", "gen", 3));
                assertEquals("STOPPED", receive(c).verb(), "the stale START started nothing and was not answered");
                c.send(Message.of("END", "code", 7));
                running.await(10 * SECOND_NS);
            }
            assertNull(agent.failure());
            assertEquals(7, agent.exitCode(), "the job's exit code, from END");
            assertTrue(console.toString(StandardCharsets.UTF_8).contains("ignored START of generation 2: generation 3 started already"),
                console.toString(StandardCharsets.UTF_8));
        }
    }
}
