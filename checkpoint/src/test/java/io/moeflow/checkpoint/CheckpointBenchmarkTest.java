package io.moeflow.checkpoint;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** The benchmark runs end to end and cleans up; its figures are not asserted (speed is not a test). */
@Timeout(120)
class CheckpointBenchmarkTest {
    @TempDir
    Path dir;

    @Test
    void shouldMeasureATinyModelAndLeaveNothingBehind() throws Exception {
        final CheckpointBenchmark.ModelShape tiny = new CheckpointBenchmark.ModelShape("tiny", 32, 8, 16, 1, 2, 32);
        final CheckpointBenchmark.Result result = new CheckpointBenchmark(dir).run(tiny, 1);
        assertEquals("tiny", result.model());
        assertEquals(tiny.parameters().stream().mapToLong(TensorSpec::elements).sum(), result.parameters());
        assertTrue(result.bytes() > 3 * 4 * result.parameters(), "files hold params and two moments");
        assertTrue(result.checkpointMBps() > 0 && result.plainMBps() > 0 && result.jhdfDirectMBps() > 0
            && result.jhdfCoalescedMBps() > 0, result.toString());
        assertTrue(result.toString().contains("ratio"), result.toString());
        try (var left = Files.list(dir)) {
            assertEquals(0, left.count());
        }
    }

    @Test
    void shouldShapeTheBenchModelLikeTheTrainingBenchmark() {
        // V=256, T=128, C=128, L=2, E=16, F=256 as in the PyTorch reference: 2,328,832 parameters.
        assertEquals(2_328_832, CheckpointBenchmark.ModelShape.BENCH.parameters().stream()
            .mapToLong(TensorSpec::elements).sum());
        final long large = CheckpointBenchmark.ModelShape.LARGE.parameters().stream().mapToLong(TensorSpec::elements)
            .sum();
        assertTrue(large > 90_000_000 && large < 110_000_000, "large=" + large);
    }
}
