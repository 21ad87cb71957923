package io.moeflow.launcher.cluster;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class HostFileTest {
    @TempDir
    Path dir;

    @Test
    void shouldReadDeepSpeedAndOpenMpiLinesWithCommentsAndBlankLines() throws Exception {
        final Path file = dir.resolve("hostfile");
        Files.writeString(file, """
            # two workers per node
            worker-1 slots=2

            worker-2   slots=2 max_slots=4   # OpenMPI's max_slots is ignored
            \troot@10.0.0.3 slots=2
            """);
        final HostFile hosts = HostFile.read(file);
        assertEquals(List.of(new HostFile.Host("worker-1", 2, 2), new HostFile.Host("worker-2", 2, 4),
            new HostFile.Host("root@10.0.0.3", 2, 5)), hosts.hosts());
        assertEquals(2, hosts.nprocPerNode(null));
    }

    @Test
    void shouldGiveOneSlotToAHostWithoutSlots() {
        final HostFile hosts = HostFile.parse("h", List.of("a", "b slots=1"));
        assertEquals(1, hosts.hosts().get(0).slots());
        assertEquals(1, hosts.nprocPerNode(null));
    }

    @Test
    void shouldNameFileAndLineOfAWrongLine() {
        assertMessage("hf:2: 'slots=x': give a whole number >= 1", List.of("a slots=2", "b slots=x"));
        assertMessage("hf:1: 'slots=0': give a whole number >= 1", List.of("a slots=0"));
        assertMessage("hf:3: 'gpus=2': unknown option", List.of("a", "", "b gpus=2"));
        assertMessage("hf:1: 'slots=2' starts with an option", List.of("slots=2"));
        assertMessage("hf:1: 'x': expected slots=N", List.of("a x"));
        assertMessage("hf:2: host a is already on line 1", List.of("a slots=1", "a slots=1"));
        assertMessage("hf:1: host 'a;rm': not a host name", List.of("a;rm slots=1"));
        assertMessage("hf: no hosts", List.of("# nothing", ""));
    }

    @Test
    void shouldRefuseUnequalSlotsUnlessNprocPerNodeIsGiven() {
        final HostFile hosts = HostFile.parse("hf", List.of("a slots=4", "b slots=2"));
        final IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> hosts.nprocPerNode(null));
        assertTrue(e.getMessage().contains("hosts have different slots (a slots=4, b slots=2)") && e.getMessage().contains("--nproc-per-node"),
            e.getMessage());
        assertEquals(2, hosts.nprocPerNode(2));
        final IllegalArgumentException tooMany = assertThrows(IllegalArgumentException.class, () -> hosts.nprocPerNode(3));
        assertTrue(tooMany.getMessage().contains("host b (hf:2) has only slots=2"), tooMany.getMessage());
    }

    @Test
    void shouldSayWhenTheFileCannotBeRead() {
        final IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> HostFile.read(dir.resolve("missing")));
        assertTrue(e.getMessage().startsWith("--hostfile " + dir.resolve("missing") + ": cannot read it"), e.getMessage());
    }

    private static void assertMessage(final String expected, final List<String> lines) {
        final IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> HostFile.parse("hf", lines));
        assertTrue(e.getMessage().startsWith(expected), e.getMessage());
    }
}
