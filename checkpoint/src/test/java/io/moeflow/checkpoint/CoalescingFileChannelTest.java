package io.moeflow.checkpoint;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import io.jhdf.HdfFile;
import io.jhdf.WritableHdfFile;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.SplittableRandom;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

@Timeout(60)
class CoalescingFileChannelTest {
    @TempDir
    Path dir;

    private static FileChannel open(final Path p) throws IOException {
        return FileChannel.open(p, StandardOpenOption.CREATE, StandardOpenOption.READ, StandardOpenOption.WRITE);
    }

    /** The reference is a plain FileChannel; both receive the same random operations and must end identical. */
    @ParameterizedTest
    @ValueSource(longs = {1, 2, 3, 4, 5, 6, 7, 8})
    void shouldLeaveTheSameBytesAndAnswerTheSameAsAPlainChannel(final long seed) throws IOException {
        final SplittableRandom random = new SplittableRandom(seed);
        final Path plainPath = dir.resolve("plain");
        final Path coalescedPath = dir.resolve("coalesced");
        // A small gathering buffer so operations often straddle and exceed it.
        final ByteBuffer buffer = ByteBuffer.allocateDirect(64);
        try (FileChannel plain = open(plainPath); FileChannel coalesced = new CoalescingFileChannel(
            open(coalescedPath), buffer)) {
            for (int op = 0; op < 400; op++) {
                final int kind = random.nextInt(10);
                if (kind < 5) {
                    final byte[] bytes = randomBytes(random, random.nextInt(200));
                    final boolean direct = random.nextBoolean();
                    assertEquals(plain.write(wrap(bytes, false)), coalesced.write(wrap(bytes, direct)));
                } else if (kind == 5) {
                    final byte[] bytes = randomBytes(random, random.nextInt(100));
                    final long at = random.nextInt(2000);
                    assertEquals(plain.write(wrap(bytes, false), at), coalesced.write(wrap(bytes, false), at));
                } else if (kind == 6) {
                    final long to = random.nextInt(2000);
                    plain.position(to);
                    coalesced.position(to);
                } else if (kind == 7) {
                    assertEquals(plain.size(), coalesced.size());
                } else if (kind == 8) {
                    final ByteBuffer a = ByteBuffer.allocate(random.nextInt(50));
                    final ByteBuffer b = ByteBuffer.allocate(a.capacity());
                    assertEquals(plain.read(a), coalesced.read(b));
                    assertArrayEquals(a.array(), b.array());
                } else {
                    final ByteBuffer a = ByteBuffer.allocate(random.nextInt(50));
                    final ByteBuffer b = ByteBuffer.allocate(a.capacity());
                    final long at = random.nextInt(2500);
                    assertEquals(plain.read(a, at), coalesced.read(b, at));
                    assertArrayEquals(a.array(), b.array());
                }
                assertEquals(plain.position(), coalesced.position(), "position after op " + op);
            }
        }
        assertArrayEquals(Files.readAllBytes(plainPath), Files.readAllBytes(coalescedPath));
    }

    private static byte[] randomBytes(final SplittableRandom random, final int n) {
        final byte[] bytes = new byte[n];
        for (int i = 0; i < n; i++) {
            bytes[i] = (byte) random.nextInt(256);
        }
        return bytes;
    }

    private static ByteBuffer wrap(final byte[] bytes, final boolean direct) {
        if (!direct) {
            return ByteBuffer.wrap(bytes);
        }
        final ByteBuffer b = ByteBuffer.allocateDirect(bytes.length);
        b.put(bytes).flip();
        return b;
    }

    @Test
    void shouldMakeJhdfWriteAByteIdenticalFile() throws IOException {
        final float[][] matrix = new float[300][33];
        final long[] counters = new long[1000];
        for (int i = 0; i < 300; i++) {
            for (int j = 0; j < 33; j++) {
                matrix[i][j] = i * 33 + j;
            }
        }
        for (int i = 0; i < counters.length; i++) {
            counters[i] = i * 7L;
        }
        final Path direct = dir.resolve("direct.h5");
        final Path coalesced = dir.resolve("coalesced.h5");
        writeWithJhdf(direct, matrix, counters);
        writeWithJhdf(CoalescingPath.of(coalesced, ByteBuffer.allocateDirect(4096)), matrix, counters);
        assertArrayEquals(Files.readAllBytes(direct), Files.readAllBytes(coalesced));
    }

    private static void writeWithJhdf(final Path path, final float[][] matrix, final long[] counters) {
        try (WritableHdfFile f = HdfFile.write(path)) {
            f.putAttribute("note", "same bytes either way");
            f.putDataset("matrix", matrix).putAttribute("crc32", 1L);
            f.putGroup("g").putDataset("counters", counters);
        }
    }
}
