package io.moeflow.checkpoint;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.zip.CRC32;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** The files must open in the reference HDF5 library's tools (Debian hdf5-tools); skipped where they are missing. */
@Timeout(120)
class Hdf5ToolsTest {
    @TempDir
    static Path dir;

    static Path checkpoint;

    @BeforeAll
    static void saveOneCheckpoint() {
        try (CheckpointWriter w = new CheckpointWriter(CheckpointConfig.defaults(dir).withAsyncSave(false),
            Fixtures.layout(), Fixtures.METADATA)) {
            Fixtures.save(w, 3);
        }
        checkpoint = dir.resolve("step-00000003");
    }

    private static boolean installed(final String tool) {
        try {
            final Process p = new ProcessBuilder(tool, "--version").redirectErrorStream(true).start();
            p.getInputStream().readAllBytes();
            return p.waitFor(30, TimeUnit.SECONDS) && p.exitValue() == 0;
        } catch (final IOException e) {
            return false;
        } catch (final InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
    }

    /** Runs a tool, fails on a non-zero exit or after 60 s, returns its output. */
    private static String run(final String... command) throws Exception {
        assumeTrue(installed(command[0]), command[0] + " is not installed (Debian: apt-get install hdf5-tools)");
        final Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
        final byte[] out = p.getInputStream().readAllBytes();
        if (!p.waitFor(60, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new AssertionError(String.join(" ", command) + " did not finish in 60 s");
        }
        final String text = new String(out, StandardCharsets.UTF_8);
        assertEquals(0, p.exitValue(), String.join(" ", command) + " failed:\n" + text);
        return text;
    }

    @Test
    void shouldListEveryTensorWithItsShapeInH5ls() throws Exception {
        final String model = run("h5ls", "-r", checkpoint.resolve("model.h5").toString());
        for (int i = 0; i < Fixtures.PARAM_NAMES.length; i++) {
            final List<String> dims = new ArrayList<>();
            for (final long d : Fixtures.PARAM_SHAPES[i]) {
                dims.add(Long.toString(d));
            }
            final String expected = "/" + Fixtures.PARAM_NAMES[i] + " Dataset {" + String.join(", ", dims) + "}";
            assertTrue(model.replaceAll(" +", " ").contains(expected), expected + " not in:\n" + model);
        }
        final String state = run("h5ls", "-r", checkpoint.resolve("state.h5").toString()).replaceAll(" +", " ");
        assertTrue(state.contains("/optimizer/exp_avg Group"), state);
        assertTrue(state.contains("/optimizer/exp_avg_sq/wte.weight Dataset {16, 8}"), state);
        assertTrue(state.contains("/step Dataset {SCALAR}"), state);
        assertTrue(state.contains("/counters Dataset {2, 2, 2}"), state);
    }

    @Test
    void shouldShowTypesAndAttributesInH5dump() throws Exception {
        final String header = run("h5dump", "-H", "-A", checkpoint.resolve("state.h5").toString());
        assertTrue(header.contains("\"moeflow-checkpoint\""), header);
        assertTrue(header.contains("DATASET \"step\"") && header.contains("H5T_STD_I64LE"), header);
        assertTrue(header.contains("H5T_IEEE_F64LE") && header.contains("H5T_STD_I32LE"), header);
        assertTrue(header.contains("H5T_IEEE_F32LE"), header);
    }

    @Test
    void shouldDumpTheSameBytesAndChecksumTheLibraryReads() throws Exception {
        final String name = "blocks.0.attn.qkv.weight";
        final Path out = dir.resolve("qkv.bin");
        run("h5dump", "-b", "LE", "-d", "/" + name, "-o", out.toString(), checkpoint.resolve("model.h5").toString());
        final byte[] dumped = Files.readAllBytes(out);

        // The fixture's qkv weight is slab 0 from offset 16*8, 24*8 elements.
        final ByteBuffer expected = ByteBuffer.allocate(24 * 8 * 4).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < 24 * 8; i++) {
            expected.putFloat(Fixtures.value(3, 0, 16 * 8 + i));
        }
        assertArrayEquals(expected.array(), dumped);

        final CRC32 crc = new CRC32();
        crc.update(dumped);
        final String attribute = run("h5dump", "-a", "/" + name + "/crc32", checkpoint.resolve("model.h5")
            .toString());
        assertTrue(attribute.contains("(0): " + crc.getValue()), "crc32 " + crc.getValue() + " not in:\n"
            + attribute);
    }

    @Test
    void shouldDumpIntegerAndDoubleStateBitwise() throws Exception {
        final Path out = dir.resolve("rng.bin");
        run("h5dump", "-b", "LE", "-d", "/rng/data", "-o", out.toString(), checkpoint.resolve("state.h5").toString());
        final ByteBuffer rng = ByteBuffer.wrap(Files.readAllBytes(out)).order(ByteOrder.LITTLE_ENDIAN);
        assertArrayEquals(new long[] {3, Long.MIN_VALUE, Long.MAX_VALUE, -3},
            new long[] {rng.getLong(), rng.getLong(), rng.getLong(), rng.getLong()});
    }
}
