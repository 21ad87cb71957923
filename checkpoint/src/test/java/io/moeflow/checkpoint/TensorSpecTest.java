package io.moeflow.checkpoint;

import static io.moeflow.checkpoint.CheckpointFile.MODEL;
import static io.moeflow.checkpoint.CheckpointFile.STATE;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.Map;

import org.junit.jupiter.api.Test;

class TensorSpecTest {
    private static void assertRejected(final String expected, final Runnable r) {
        final IllegalArgumentException e = assertThrows(IllegalArgumentException.class, r::run);
        assertTrue(e.getMessage().contains(expected), e.getMessage());
    }

    @Test
    void shouldCountLargeTensorsWithoutIntOverflow() {
        final TensorSpec big = TensorSpec.float64(STATE, "big", 1L << 20, 1L << 10);
        assertEquals(1 << 30, big.elements());
        assertEquals(1L << 33, big.sizeBytes());
        final CheckpointLayout layout = CheckpointLayout.builder().add(big)
            .float32(MODEL, "w", TensorSpec.MAX_ELEMENTS).build();
        assertEquals((1L << 33) + 4 * TensorSpec.MAX_ELEMENTS, layout.totalBytes());
    }

    @Test
    void shouldRejectTensorsLargerThanOneJavaArray() {
        assertRejected("has more than 2147483639 elements", () -> TensorSpec.float32(MODEL, "w", 65536, 65536));
        assertRejected("has more than", () -> TensorSpec.float32(MODEL, "w", Long.MAX_VALUE, 2));
    }

    @Test
    void shouldRejectBadShapesAndNames() {
        assertRejected("has a dimension < 1", () -> TensorSpec.float32(MODEL, "w", 3, 0));
        assertRejected("rank=33", () -> TensorSpec.float32(STATE, "w", new long[33]));
        assertRejected("empty, '.' or '..'", () -> TensorSpec.int64(STATE, "a//b"));
        assertRejected("empty, '.' or '..'", () -> TensorSpec.int64(STATE, "/a"));
        assertRejected("empty, '.' or '..'", () -> TensorSpec.int64(STATE, "a/../b"));
        assertRejected("control character", () -> TensorSpec.int64(STATE, "a\nb"));
        assertRejected("non-empty", () -> TensorSpec.int64(STATE, ""));
    }

    @Test
    void shouldKeepModelH5LoadableByADictComprehension() {
        assertRejected("model.h5 holds float32 parameters only", () -> TensorSpec.int64(MODEL, "step"));
        assertRejected("model.h5 holds root datasets only", () -> TensorSpec.float32(MODEL, "opt/m", 3));
    }

    @Test
    void shouldCopyTheShapeInAndOut() {
        final long[] shape = {2, 3};
        final TensorSpec t = TensorSpec.float32(MODEL, "w", shape);
        shape[0] = 99;
        t.shape()[1] = 99;
        assertEquals("[2, 3]", t.shapeText());
        assertEquals(TensorSpec.float32(MODEL, "w", 2, 3), t);
        assertEquals(TensorSpec.float32(MODEL, "w", 2, 3).hashCode(), t.hashCode());
    }

    @Test
    void shouldRejectDuplicateNamesAndNameClashesWithGroups() {
        assertRejected("declared twice", () -> CheckpointLayout.builder().float32(MODEL, "w", 1)
            .float32(MODEL, "w", 1).build());
        assertRejected("is both a tensor and a group", () -> CheckpointLayout.builder().int64(STATE, "opt")
            .int64(STATE, "opt/m").build());
        assertRejected("at least one tensor", () -> CheckpointLayout.builder().build());
        final CheckpointLayout sameNameOtherFile = CheckpointLayout.builder().float32(MODEL, "w", 2)
            .float32(STATE, "w", 2).build();
        assertEquals(1, sameNameOtherFile.indexOf(STATE, "w"));
        assertEquals(-1, sameNameOtherFile.indexOf(STATE, "v"));
    }

    @Test
    void shouldValidateConfigsWithNameEqualsValueMessages() {
        assertRejected("keepLast=-1", () -> new CheckpointConfig(Path.of("x"), -1, true, 1));
        assertRejected("saveTimeoutNs=0", () -> new CheckpointConfig(Path.of("x"), 1, true, 0));
        assertRejected("worldSize=0", () -> RunMetadata.of("", "1", null, 0));
        assertRejected("clashes with a standard checkpoint attribute", () -> new RunMetadata("", "1", "g", "17", 1,
            Map.of("step", "x")));
        assertRejected("holds at most 57344 bytes", () -> RunMetadata.of("x".repeat(60_000), "1", null, 1));
        assertEquals(RunMetadata.UNKNOWN, RunMetadata.of("", "1", " ", 1).gitCommit());
    }
}
