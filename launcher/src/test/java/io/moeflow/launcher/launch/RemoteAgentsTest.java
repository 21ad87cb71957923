package io.moeflow.launcher.launch;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** Agents started through a starter that runs a shell here instead of ssh: key on stdin, output relayed, replaced, ended. */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class RemoteAgentsTest {
    private static final String KEY = "ab".repeat(32);

    @TempDir
    Path dir;

    /** Runs the agent command in /bin/sh here, remembering what it was given. */
    private static final class ShellStarter implements AgentStarter {
        final List<List<String>> started = new ArrayList<>();

        @Override
        public Process start(final int node, final List<String> command, final Path workDir) throws IOException {
            started.add(command);
            return new ProcessBuilder(command).directory(workDir.toFile()).redirectErrorStream(true).start();
        }

        @Override
        public String where(final int node) {
            return "sh " + node;
        }
    }

    @Test
    void shouldGiveEachAgentTheKeyOnStdinAndRelayItsOutput() throws Exception {
        final ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        final PrintStream out = new PrintStream(bytes, true, StandardCharsets.UTF_8);
        final ShellStarter starter = new ShellStarter();
        final RemoteAgents agents = new RemoteAgents(starter, node -> List.of("/bin/sh", "-c", "read k; echo node " + node + " key $k in $PWD"),
            dir, KEY, out, TimeUnit.SECONDS.toNanos(10));
        try (agents) {
            agents.startAll(2);
            for (final AgentHandle h : agents.handles()) {
                h.await(TimeUnit.SECONDS.toNanos(20));
                assertNull(h.failure(), "ended with 0");
            }
        }
        final String printed = bytes.toString(StandardCharsets.UTF_8);
        assertTrue(printed.contains("[node 0] node 0 key " + KEY + " in " + dir), printed);
        assertTrue(printed.contains("[node 1] node 1 key " + KEY + " in " + dir), printed);
        assertFalse(String.join(" ", starter.started.get(0)).contains(KEY), "the key is not on the command line");
    }

    @Test
    void shouldReplaceALostNodesAgentAndEndEveryAgentOnClose() throws Exception {
        final PrintStream out = new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8);
        final ShellStarter starter = new ShellStarter();
        final RemoteAgents agents = new RemoteAgents(starter, node -> List.of("/bin/sh", "-c", "read k; echo up; exec sleep 600"), dir, KEY,
            out, TimeUnit.MILLISECONDS.toNanos(200));
        final Process first;
        final Process second;
        try (agents) {
            agents.startAll(2);
            first = agents.process(1);
            agents.replacementWanted(List.of(1));
            second = agents.process(1);
            assertNotEquals(first.pid(), second.pid(), "a new process for node 1");
            assertFalse(first.isAlive(), "the old agent of node 1 was ended before its replacement started");
            assertEquals(3, starter.started.size());
            assertTrue(second.isAlive());
        }
        assertFalse(second.isAlive(), "close() ends agents still running after the stop timeout");
        assertFalse(agents.process(0).isAlive());
        final String failure = agents.handles().get(1).failure();
        assertTrue(failure != null && failure.startsWith("node 1 (sh 1): the agent ended with exit code ") && failure.endsWith(": up"),
            failure);
    }

    @Test
    void shouldQuoteEveryWordForTheRemoteShell() {
        assertEquals("'a b'", SshAgentStarter.quote("a b"));
        assertEquals("'it'\"'\"'s'", SshAgentStarter.quote("it's"));
        assertEquals(List.of("ssh", "-F", "/x/cfg"), SshAgentStarter.parseCommand("  ssh  -F /x/cfg "));
    }
}
