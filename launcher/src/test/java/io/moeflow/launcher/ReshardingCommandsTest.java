package io.moeflow.launcher;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import io.moeflow.checkpoint.CheckpointReader;
import io.moeflow.checkpoint.ShardedMetadata;

/**
 * A run that changes shape through the CLI: 2 worker JVMs with expert parallelism, then one process, then 2 workers
 * again, each continuing (and extending) the previous one's checkpoint.
 */
@Tag("slow")
@Timeout(value = 600, unit = TimeUnit.SECONDS)
class ReshardingCommandsTest {
    private static final String[] TINY = CliRun.concat(CliRun.TINY, "--threads", "1", "--eval-samples", "0",
        "--samples", "0", "--save-every", "4");

    @TempDir
    Path runs;

    private String[] launch(final String... train) {
        final List<String> args = new ArrayList<>(List.of("launch", "--nproc-per-node", "2", "train"));
        args.addAll(List.of(train));
        args.addAll(List.of("--run-name", "run", "--runs-dir", runs.toString()));
        return args.toArray(new String[0]);
    }

    @Test
    void shouldContinueAnExpertParallelJobInOneProcessAndThatRunInAJobAgain() throws IOException {
        final CliRun job = CliRun.of(launch(CliRun.concat(TINY, "--expert-parallel", "2", "--steps", "8")));
        assertEquals(0, job.exitCode(), job.out() + job.err());
        final Path checkpoints = runs.resolve("run/checkpoints");
        try (CheckpointReader r = CheckpointReader.open(checkpoints.resolve("step-00000008"))) {
            final ShardedMetadata m = r.shardedMetadata().orElseThrow();
            assertEquals(2, m.worldSize());
            assertEquals(2, r.metadata().worldSize(), "the run metadata (inspect's 'world size') is the job's");
            assertEquals("2", m.properties().get("expert_parallel"));
            assertEquals("0:0 1:0 2:1 3:1", m.properties().get("expert_owners"));
        }

        final CliRun inspect = CliRun.of("inspect", checkpoints.resolve("step-00000008").toString());
        assertEquals(0, inspect.exitCode(), inspect.err());
        assertTrue(inspect.out().contains("sharded:    2 rank parts, expert_owners 0:0 1:0 2:1 3:1, expert_parallel 2")
            && inspect.out().contains("every checksum verified")
            && inspect.out().contains("blocks.0.moe.experts.3.w1.weight"), inspect.out());

        // One process: the job's --expert-parallel 2 (saved) does not bind it; it loads every expert by name.
        final CliRun single = CliRun.of("train", "--run-name", "run", "--runs-dir", runs.toString(), "--resume", "auto",
            "--steps", "12");
        assertEquals(0, single.exitCode(), single.out() + single.err());
        assertTrue(single.out().contains("continuing from") && single.out().contains("(step 8)"), single.out());
        assertTrue(Files.exists(checkpoints.resolve("step-00000012/manifest.txt")), "one process saves a plain one");

        // And a job again, from the one-process checkpoint.
        final CliRun again = CliRun.of(launch("--resume", "auto", "--steps", "16"));
        assertEquals(0, again.exitCode(), again.out() + again.err());
        assertTrue(again.out().contains("(step 12)"), again.out());
        assertTrue(Files.exists(checkpoints.resolve("step-00000016/metadata.txt")), "the job saves a sharded one");
        final List<String> lines = Files.readAllLines(runs.resolve("run/metrics.jsonl"));
        assertEquals(16, lines.size(), "8 steps in the job, 4 in one process, 4 in the job again");
        final double first = loss(lines.get(0));
        final double last = loss(lines.get(15));
        assertTrue(last < first, "the loss fell over the three shapes: " + first + " -> " + last);
    }

    private static double loss(final String line) {
        final int i = line.indexOf("\"loss\":") + "\"loss\":".length();
        return Double.parseDouble(line.substring(i, line.indexOf(',', i)));
    }
}
