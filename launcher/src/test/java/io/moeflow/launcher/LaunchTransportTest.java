package io.moeflow.launcher;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** {@code launch --transport}: the same job over Aeron UDP (each rank its own driver) and over IPC gives the same bits. */
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
