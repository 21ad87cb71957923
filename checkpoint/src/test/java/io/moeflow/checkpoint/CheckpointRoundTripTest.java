package io.moeflow.checkpoint;

import static io.moeflow.checkpoint.CheckpointFile.MODEL;
import static io.moeflow.checkpoint.CheckpointFile.STATE;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Instant;
import java.time.ZoneId;
import java.time.ZoneOffset;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

@Timeout(60)
class CheckpointRoundTripTest {
    @TempDir
    Path dir;

    private CheckpointWriter writer(final boolean async) {
        return new CheckpointWriter(CheckpointConfig.defaults(dir).withAsyncSave(async), Fixtures.layout(),
            Fixtures.METADATA, FaultInjector.NONE, Fixtures.FIXED_CLOCK);
    }

    @Test
    void shouldReadBackEveryTensorBitwiseAfterASynchronousSave() {
        try (CheckpointWriter w = writer(false)) {
            Fixtures.save(w, 42);
        }
        try (CheckpointReader r = CheckpointReader.open(dir.resolve("step-00000042"))) {
            Fixtures.assertHoldsStep(r, 42);
            final long[] rng = new long[4];
            r.readInt64(STATE, "rng/data", rng, 0);
            assertArrayEquals(new long[] {42, Long.MIN_VALUE, Long.MAX_VALUE, -42}, rng);
            final double[] bias = new double[6];
            r.readFloat64(STATE, "moe/bias", bias, 0);
            final double[] expected = {0, -0.0, Double.MIN_VALUE, 42, Double.NaN, 1e300};
            for (int i = 0; i < bias.length; i++) {
                assertEquals(Double.doubleToRawLongBits(expected[i]), Double.doubleToRawLongBits(bias[i]), "bias " + i);
            }
            final int[] counters = new int[8];
            r.readInt32(STATE, "counters", counters, 0);
            assertArrayEquals(new int[] {1, 2, 3, 4, 5, 6, 7, 42}, counters);
            assertEquals(1e-3 / 43, r.float64(STATE, "schedule/lr"));
            final int[] stage = new int[1];
            r.readInt32(STATE, "curriculum/stage", stage, 0);
            assertEquals(0, stage[0]);
        }
    }

    @Test
    void shouldReadBackTheSameAfterAnAsynchronousSave() {
        try (CheckpointWriter w = writer(true)) {
            final SaveTicket ticket = Fixtures.save(w, 7);
            assertTrue(ticket.async());
            final List<SaveResult> results = w.awaitIdle();
            assertEquals(1, results.size());
            final SaveResult result = results.get(0);
            assertEquals(7, result.step());
            assertEquals(dir.resolve("step-00000007"), result.directory());
        }
        try (CheckpointReader r = CheckpointReader.open(dir.resolve("step-00000007"))) {
            Fixtures.assertHoldsStep(r, 7);
        }
    }

    @Test
    void shouldStoreRealShapesDtypesAndGroups() {
        try (CheckpointWriter w = writer(false)) {
            Fixtures.save(w, 1);
        }
        try (CheckpointReader r = CheckpointReader.open(dir.resolve("step-00000001"))) {
            assertEquals(TensorSpec.float32(MODEL, "blocks.0.attn.qkv.weight", 24, 8),
                r.tensor(MODEL, "blocks.0.attn.qkv.weight").orElseThrow());
            assertEquals(TensorSpec.int32(STATE, "counters", 2, 2, 2), r.tensor(STATE, "counters").orElseThrow());
            assertEquals(TensorSpec.int64(STATE, "step"), r.tensor(STATE, "step").orElseThrow());
            assertEquals(TensorSpec.float32(STATE, "optimizer/exp_avg_sq/lnf.weight", 8),
                r.tensor(STATE, "optimizer/exp_avg_sq/lnf.weight").orElseThrow());
            assertEquals(5, r.tensors(MODEL).size());
            assertEquals(Fixtures.PARAMS, r.parameterCount());
        }
    }

    @Test
    void shouldStoreFormatConfigAndProvenanceAttributesOnBothFiles() {
        try (CheckpointWriter w = writer(false)) {
            Fixtures.save(w, 3);
        }
        try (CheckpointReader r = CheckpointReader.open(dir.resolve("step-00000003"))) {
            for (final CheckpointFile file : CheckpointFile.values()) {
                final Map<String, Object> a = r.attributes(file);
                assertEquals("moeflow-checkpoint", a.get("moeflow_format"));
                assertEquals(1L, a.get("format_version"));
                assertEquals(file.kind(), a.get("kind"));
                assertEquals(3L, a.get("step"));
                assertEquals("model.layers=2\nmodel.channels=8\n", a.get("config"));
                assertEquals("0.1.0-test", a.get("moeflow_version"));
                assertEquals("abc123", a.get("git_commit"));
                assertEquals("17.0.99", a.get("java_version"));
                assertEquals("2025-01-02T03:04:05Z", a.get("created_utc"));
                assertEquals(2L, a.get("world_size"));
                assertEquals("fixture", a.get("run_name"));
            }
            assertEquals(Fixtures.METADATA, r.metadata());
            assertEquals("2025-01-02T03:04:05Z", r.createdUtc());
            assertEquals(1, r.formatVersion());
        }
    }

    @Test
    void shouldGiveBothFilesTheSameCreatedUtcEvenWhenTheClockTicksBetweenThem() {
        // a clock that moves one second at every reading: two readings per save would differ
        final Clock ticking = new Clock() {
            private Instant now = Instant.parse("2025-01-02T03:04:05Z");

            @Override
            public ZoneId getZone() {
                return ZoneOffset.UTC;
            }

            @Override
            public Clock withZone(final ZoneId zone) {
                return this;
            }

            @Override
            public synchronized Instant instant() {
                now = now.plusSeconds(1);
                return now;
            }
        };
        try (CheckpointWriter w = new CheckpointWriter(CheckpointConfig.defaults(dir).withAsyncSave(false),
            Fixtures.layout(), Fixtures.METADATA, FaultInjector.NONE, ticking)) {
            Fixtures.save(w, 5);
        }
        try (CheckpointReader r = CheckpointReader.open(dir.resolve("step-00000005"))) {
            assertEquals(r.attributes(MODEL).get("created_utc"), r.attributes(STATE).get("created_utc"));
        }
    }

    @Test
    void shouldStorePerSaveStringAttributesOnBothFiles() {
        try (CheckpointWriter w = writer(true)) {
            final CheckpointWriter.Snapshot s = w.begin(4).attribute("curriculum_stage", "warmup-\u00e9");
            Fixtures.fill(s);
            w.commit(s);
            final CheckpointWriter.Snapshot next = w.begin(5);
            Fixtures.fill(next);
            w.commit(next);
            final IllegalArgumentException clash = assertThrows(IllegalArgumentException.class,
                () -> w.begin(6).attribute("step", "x"));
            assertTrue(clash.getMessage().contains("clashes"), clash.getMessage());
            w.awaitIdle();
        }
        try (CheckpointReader r = CheckpointReader.open(dir.resolve("step-00000004"))) {
            assertEquals("warmup-\u00e9", r.attributes(MODEL).get("curriculum_stage"));
            assertEquals("warmup-\u00e9", r.attributes(STATE).get("curriculum_stage"));
        }
        try (CheckpointReader r = CheckpointReader.open(dir.resolve("step-00000005"))) {
            assertEquals(null, r.attributes(STATE).get("curriculum_stage"), "attributes are per save");
        }
    }

    @Test
    void shouldCopyAtPutSoTheCallerMayChangeItsArraysRightAway() {
        final CheckpointLayout layout = CheckpointLayout.builder().float32(MODEL, "w", 2, 3).build();
        final float[] slab = {9, 9, 1, 2, 3, 4, 5, 6, 9};
        try (CheckpointWriter w = new CheckpointWriter(CheckpointConfig.defaults(dir), layout, Fixtures.METADATA)) {
            final CheckpointWriter.Snapshot s = w.begin(5).float32(MODEL, "w", slab, 2);
            java.util.Arrays.fill(slab, -1f);
            w.commit(s);
            java.util.Arrays.fill(slab, -2f);
            w.awaitIdle();
        }
        try (CheckpointReader r = CheckpointReader.open(dir.resolve("step-00000005"))) {
            assertArrayEquals(new float[] {1, 2, 3, 4, 5, 6}, r.float32(MODEL, "w"));
        }
    }

    @Test
    void shouldRejectPutsThatDoNotMatchTheLayout() {
        try (CheckpointWriter w = writer(false)) {
            final CheckpointWriter.Snapshot s = w.begin(1);
            final IllegalArgumentException unknown = assertThrows(IllegalArgumentException.class,
                () -> s.float32(MODEL, "nope.weight", new float[4], 0));
            assertTrue(unknown.getMessage().contains("'nope.weight' is not in model.h5"), unknown.getMessage());
            final IllegalArgumentException dtype = assertThrows(IllegalArgumentException.class,
                () -> s.float64(STATE, "step", 1.0));
            assertTrue(dtype.getMessage().contains("declared int64[] but was put as float64"), dtype.getMessage());
            final IllegalArgumentException tooShort = assertThrows(IllegalArgumentException.class,
                () -> s.float32(MODEL, "lnf.weight", new float[10], 3));
            assertTrue(tooShort.getMessage().contains("needs 8 elements from src[3 ..] but src has length 10"),
                tooShort.getMessage());
            final IllegalArgumentException notScalar = assertThrows(IllegalArgumentException.class,
                () -> s.int64(STATE, "rng/data", 5L));
            assertTrue(notScalar.getMessage().contains("not a single value"), notScalar.getMessage());
        }
    }

    @Test
    void shouldRefuseToCommitASnapshotWithMissingTensors() {
        try (CheckpointWriter w = writer(false)) {
            final CheckpointWriter.Snapshot s = w.begin(1);
            s.int64(STATE, "step", 1L);
            final IllegalStateException e = assertThrows(IllegalStateException.class, () -> w.commit(s));
            assertTrue(e.getMessage().contains("model.h5:wte.weight"), e.getMessage());
            assertEquals(List.of(), w.store().committedSteps());
        }
    }

    @Test
    void shouldRejectAStaleSnapshot() {
        try (CheckpointWriter w = writer(false)) {
            final CheckpointWriter.Snapshot first = w.begin(1);
            Fixtures.fill(first);
            final CheckpointWriter.Snapshot second = w.begin(2);
            assertThrows(IllegalStateException.class, () -> w.commit(first));
            assertThrows(IllegalStateException.class, () -> first.int64(STATE, "step", 1L));
            Fixtures.fill(second);
            w.commit(second);
            assertEquals(List.of(2L), w.store().committedSteps());
        }
    }

    @Test
    void shouldWriteOnlyTheCommittedDirectoryManifestAndLatest() throws Exception {
        try (CheckpointWriter w = writer(false)) {
            Fixtures.save(w, 10);
        }
        try (var children = Files.list(dir)) {
            assertEquals(List.of("latest", "step-00000010", "writer.lock"), children.map(p -> p.getFileName().toString()).sorted()
                .toList());
        }
        try (var children = Files.list(dir.resolve("step-00000010"))) {
            assertEquals(List.of("manifest.txt", "model.h5", "state.h5"),
                children.map(p -> p.getFileName().toString()).sorted().toList());
        }
        assertEquals("step-00000010\n", Files.readString(dir.resolve("latest")));
        final String manifest = Files.readString(dir.resolve("step-00000010/manifest.txt"));
        assertTrue(manifest.startsWith("moeflow-checkpoint-manifest 1\nstep 10\nfile model.h5 "), manifest);
    }
}
