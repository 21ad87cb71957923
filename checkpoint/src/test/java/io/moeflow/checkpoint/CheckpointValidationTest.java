package io.moeflow.checkpoint;

import static io.moeflow.checkpoint.CheckpointFile.MODEL;
import static io.moeflow.checkpoint.CheckpointFile.STATE;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.jhdf.HdfFile;
import io.jhdf.WritableHdfFile;
import io.jhdf.api.dataset.ContiguousDataset;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Optional;

import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

@Timeout(60)
class CheckpointValidationTest {
    @TempDir
    Path dir;

    private Path step1;
    private Path step2;

    @BeforeEach
    void saveTwoCheckpoints() {
        try (CheckpointWriter w = new CheckpointWriter(CheckpointConfig.defaults(dir).withKeepLast(0)
            .withAsyncSave(false), Fixtures.layout(), Fixtures.METADATA, FaultInjector.NONE, Fixtures.FIXED_CLOCK)) {
            Fixtures.save(w, 1);
            Fixtures.save(w, 2);
        }
        step1 = dir.resolve("step-00000001");
        step2 = dir.resolve("step-00000002");
    }

    /** Flips one bit of a dataset's stored data, found through jHDF. */
    static void flipDataBit(final Path file, final String dataset) throws IOException {
        final long address;
        try (HdfFile hdf = new HdfFile(file)) {
            address = ((ContiguousDataset) hdf.getDatasetByPath(dataset)).getDataAddress() + 5;
        }
        try (RandomAccessFile raf = new RandomAccessFile(file.toFile(), "rw")) {
            raf.seek(address);
            final int b = raf.read();
            raf.seek(address);
            raf.write(b ^ 0x10);
        }
    }

    @Test
    void shouldNameTheFileAndDatasetWhoseDataWasCorrupted() throws IOException {
        flipDataBit(step2.resolve("model.h5"), "blocks.0.attn.qkv.weight");
        try (CheckpointReader r = CheckpointReader.open(step2)) {
            final CheckpointException e = assertThrows(CheckpointException.class, r::verify);
            assertEquals(step2, e.directory());
            assertEquals("model.h5", e.file());
            assertEquals("blocks.0.attn.qkv.weight", e.dataset());
            assertTrue(e.getMessage().contains("checksum mismatch"), e.getMessage());
            assertTrue(e.getMessage().contains("--resume auto"), e.getMessage());
            final CheckpointException read = assertThrows(CheckpointException.class,
                () -> r.float32(MODEL, "blocks.0.attn.qkv.weight"));
            assertEquals("blocks.0.attn.qkv.weight", read.dataset());
            r.float32(MODEL, "wte.weight");
        }
    }

    @Test
    void shouldFallBackToThePreviousCheckpointWithAWarningWhenTheNewestIsCorrupt() throws IOException {
        flipDataBit(step2.resolve("state.h5"), "optimizer/exp_avg/lnf.weight");
        final Resolution resolution = new CheckpointStore(dir).resolveAuto().orElseThrow();
        assertEquals(step1, resolution.directory());
        assertEquals(1, resolution.step());
        assertEquals(1, resolution.warnings().size());
        final String warning = resolution.warnings().get(0);
        assertTrue(warning.contains("step-00000002") && warning.contains("state.h5")
            && warning.contains("optimizer/exp_avg/lnf.weight"), warning);
        try (CheckpointReader r = CheckpointReader.open(resolution.directory())) {
            Fixtures.assertHoldsStep(r, 1);
        }
    }

    @Test
    void shouldRefuseACorruptCheckpointNamedExplicitlyWithoutFallingBack() throws IOException {
        flipDataBit(step2.resolve("model.h5"), "wte.weight");
        final CheckpointException e = assertThrows(CheckpointException.class,
            () -> new CheckpointStore(dir).resolve(step2.toString()));
        assertEquals("wte.weight", e.dataset());
    }

    @Test
    void shouldDetectATruncatedFileFromTheManifestBeforeParsingIt() throws IOException {
        final Path state = step2.resolve("state.h5");
        try (RandomAccessFile raf = new RandomAccessFile(state.toFile(), "rw")) {
            raf.setLength(raf.length() - 100);
        }
        final CheckpointException e = assertThrows(CheckpointException.class, () -> CheckpointReader.open(step2));
        assertEquals("state.h5", e.file());
        assertTrue(e.getMessage().contains("(truncated)"), e.getMessage());
        assertEquals(1, new CheckpointStore(dir).resolveAuto().orElseThrow().step());
    }

    @Test
    void shouldReportAnUnparseableFileByName() throws IOException {
        try (RandomAccessFile raf = new RandomAccessFile(step2.resolve("model.h5").toFile(), "rw")) {
            raf.seek(1);
            raf.write('X');
        }
        final CheckpointException e = assertThrows(CheckpointException.class, () -> CheckpointReader.open(step2));
        assertEquals("model.h5", e.file());
        assertTrue(e.getMessage().contains("cannot parse its HDF5 structure"), e.getMessage());
    }

    @Test
    void shouldTreatADirectoryWithoutManifestAsIncomplete() throws IOException {
        Files.delete(step2.resolve("manifest.txt"));
        final CheckpointException e = assertThrows(CheckpointException.class, () -> CheckpointReader.open(step2));
        assertEquals("manifest.txt", e.file());
        assertTrue(e.getMessage().contains("not a complete MoEFlow checkpoint"), e.getMessage());
    }

    @Test
    void shouldRejectANewerManifestVersionSayingTheHighestSupported() throws IOException {
        final Path manifest = step2.resolve("manifest.txt");
        Files.writeString(manifest, Files.readString(manifest).replace("manifest 1", "manifest 2"));
        final CheckpointException e = assertThrows(CheckpointException.class, () -> CheckpointReader.open(step2));
        assertTrue(e.getMessage().contains("format version 2; this MoEFlow supports at most version 1"),
            e.getMessage());
        assertTrue(e.getMessage().contains("newer MoEFlow"), e.getMessage());
    }

    @Test
    void shouldRejectANewerFileVersionAndAForeignFile() throws IOException {
        final Path newer = dir.resolve("newer");
        writeHandMadeCheckpoint(newer, Map.of("moeflow_format", "moeflow-checkpoint", "format_version", 2L,
            "kind", "model", "step", 5L));
        final CheckpointException version = assertThrows(CheckpointException.class,
            () -> CheckpointReader.open(newer));
        assertEquals("model.h5", version.file());
        assertTrue(version.getMessage().contains("supports at most version 1"), version.getMessage());

        final Path foreign = dir.resolve("foreign");
        writeHandMadeCheckpoint(foreign, Map.of("something", "else"));
        final CheckpointException magic = assertThrows(CheckpointException.class,
            () -> CheckpointReader.open(foreign));
        assertTrue(magic.getMessage().contains("not a MoEFlow checkpoint file"), magic.getMessage());
    }

    /** A directory with a valid manifest whose model.h5 carries the given root attributes. */
    private static void writeHandMadeCheckpoint(final Path checkpoint, final Map<String, Object> modelAttributes)
        throws IOException {
        Files.createDirectories(checkpoint);
        try (WritableHdfFile f = HdfFile.write(checkpoint.resolve("model.h5"))) {
            modelAttributes.forEach(f::putAttribute);
            f.putDataset("w", new float[] {1, 2});
        }
        try (WritableHdfFile f = HdfFile.write(checkpoint.resolve("state.h5"))) {
            f.putAttribute("moeflow_format", "moeflow-checkpoint");
        }
        Files.writeString(checkpoint.resolve("manifest.txt"), "moeflow-checkpoint-manifest 1\nstep 5\nfile model.h5 "
            + Files.size(checkpoint.resolve("model.h5")) + "\nfile state.h5 " + Files.size(checkpoint.resolve("state.h5"))
            + "\n");
    }

    @Test
    void shouldRejectACheckpointRenamedToAnotherStep() throws IOException {
        final Path renamed = dir.resolve("step-00000005");
        Files.move(step2, renamed);
        final CheckpointException e = assertThrows(CheckpointException.class, () -> CheckpointReader.open(renamed));
        assertTrue(e.getMessage().contains("directory name says step 5 but the manifest says step 2"),
            e.getMessage());
    }

    @Test
    void shouldLoadACheckpointCopiedUnderAnyOtherName() throws IOException {
        final Path copy = dir.resolve("best");
        Files.move(step2, copy);
        try (CheckpointReader r = CheckpointReader.open(copy)) {
            Fixtures.assertHoldsStep(r, 2);
        }
    }

    @Test
    void shouldNameTheFirstMismatchingTensorAndBothShapes() {
        try (CheckpointReader r = CheckpointReader.open(step2)) {
            final CheckpointLayout wider = CheckpointLayout.builder()
                .float32(MODEL, "wte.weight", 16, 8)
                .float32(MODEL, "blocks.0.attn.qkv.weight", 48, 16)
                .build();
            final CheckpointException shape = assertThrows(CheckpointException.class, () -> r.checkLayout(wider));
            assertEquals("blocks.0.attn.qkv.weight", shape.dataset());
            assertTrue(shape.getMessage().contains("the checkpoint has float32[24, 8] but the current run expects "
                + "float32[48, 16]"), shape.getMessage());
            assertTrue(shape.getMessage().contains("'config' attribute"), shape.getMessage());

            final CheckpointLayout deeper = CheckpointLayout.builder()
                .add(TensorSpec.float32(MODEL, "blocks.1.attn.qkv.weight", 24, 8)).build();
            final CheckpointException missing = assertThrows(CheckpointException.class, () -> r.checkLayout(deeper));
            assertTrue(missing.getMessage().contains("has no such tensor; the current run expects float32[24, 8]"),
                missing.getMessage());

            final CheckpointLayout.Builder smaller = CheckpointLayout.builder();
            Fixtures.layout().tensors().stream().filter(t -> !t.name().equals("counters")).forEach(smaller::add);
            final CheckpointException extra = assertThrows(CheckpointException.class,
                () -> r.checkLayout(smaller.build()));
            assertEquals("counters", extra.dataset());
            assertTrue(extra.getMessage().contains("the current run has no such tensor"), extra.getMessage());

            r.checkLayout(Fixtures.layout());
        }
    }

    @Test
    void shouldFindNothingToResumeInAFreshRun() {
        final CheckpointStore fresh = new CheckpointStore(dir.resolve("fresh"));
        assertEquals(Optional.empty(), fresh.resolveAuto());
        final CheckpointException e = assertThrows(CheckpointException.class, () -> fresh.resolve("auto"));
        assertTrue(e.getMessage().contains("no committed checkpoint"), e.getMessage());
    }

    @Test
    void shouldListEveryFailureWhenNoCheckpointValidates() throws IOException {
        Files.delete(step1.resolve("manifest.txt"));
        Files.delete(step2.resolve("manifest.txt"));
        final CheckpointException e = assertThrows(CheckpointException.class,
            () -> new CheckpointStore(dir).resolveAuto());
        assertTrue(e.getMessage().contains("none of the 2 committed checkpoints validates"), e.getMessage());
        assertTrue(e.getMessage().contains("step-00000001") && e.getMessage().contains("step-00000002"),
            e.getMessage());
    }

    @Test
    void shouldExplainThatARunDirectoryIsNotACheckpoint() {
        final CheckpointException e = assertThrows(CheckpointException.class,
            () -> new CheckpointStore(dir).resolve(dir.toString()));
        assertTrue(e.getMessage().contains("use --resume auto"), e.getMessage());
    }

    @Test
    void shouldIgnoreUnfinishedSavesWhenResolving() throws IOException {
        final Path unfinished = dir.resolve("step-00000009.tmp-12345");
        Files.createDirectories(unfinished);
        Files.writeString(unfinished.resolve("model.h5"), "half written");
        final CheckpointStore store = new CheckpointStore(dir);
        assertEquals(List.of(1L, 2L), store.committedSteps());
        assertEquals(2, store.resolveAuto().orElseThrow().step());
        final CheckpointException e = assertThrows(CheckpointException.class, () -> store.resolve(unfinished));
        assertTrue(e.getMessage().contains("unfinished save"), e.getMessage());
    }

    @Test
    void shouldRejectReadsOfTheWrongTypeOrIntoTooSmallArrays() {
        try (CheckpointReader r = CheckpointReader.open(step1)) {
            final CheckpointException type = assertThrows(CheckpointException.class,
                () -> r.readFloat32(STATE, "step", new float[1], 0));
            assertTrue(type.getMessage().contains("stores it as int64[], read as float32"), type.getMessage());
            final IllegalArgumentException small = assertThrows(IllegalArgumentException.class,
                () -> r.readFloat32(MODEL, "lnf.weight", new float[9], 2));
            assertTrue(small.getMessage().contains("8 elements; they do not fit dst[2 ..] of length 9"),
                small.getMessage());
        }
    }
}
