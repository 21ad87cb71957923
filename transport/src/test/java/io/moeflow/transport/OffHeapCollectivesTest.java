package io.moeflow.transport;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.ByteBuffer;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;

import org.agrona.BufferUtil;
import org.agrona.concurrent.UnsafeBuffer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import io.moeflow.transport.aeron.AeronTestJob;
import io.moeflow.transport.aeron.AeronTransport;
import io.moeflow.transport.aeron.JobMediaDriver;
import io.moeflow.transport.fp8.Fp8Format;
import io.moeflow.transport.inprocess.InProcessCluster;

/**
 * Collectives over values in off-heap memory (an {@link UnsafeBuffer} over a direct or mapped
 * ByteBuffer) give bitwise the results of the same collectives over float[], in-process and over
 * Aeron IPC, touch nothing outside the given range and allocate nothing per blocking operation.
 */
@Timeout(value = 180, unit = TimeUnit.SECONDS)
class OffHeapCollectivesTest {
    static final CommunicatorConfig CONFIG = CommunicatorConfig.DEFAULT.withOpTimeoutNs(TimeUnit.SECONDS.toNanos(20));
    /** Values placed before and after every off-heap range: they must come back untouched. */
    static final float GUARD = 12345.5f;
    /** Off-heap ranges start at this value index, so offsets are exercised too. */
    static final int OFF = 3;

    /** Values of one operand, either in a float[] or in an off-heap buffer at value offset {@link #OFF}. */
    static final class Operand {
        final float[] heap;
        final UnsafeBuffer direct;
        final int off;
        final int n;

        Operand(final float[] values, final boolean offHeap, final UnsafeBuffer memory) {
            n = values.length;
            if (offHeap) {
                heap = null;
                direct = memory;
                off = OFF;
                for (int i = 0; i < OFF; i++) {
                    direct.putFloat(4 * i, GUARD);
                }
                for (int i = 0; i < n; i++) {
                    direct.putFloat(4 * (OFF + i), values[i]);
                }
                direct.putFloat(4 * (OFF + n), GUARD);
            } else {
                heap = values.clone();
                direct = null;
                off = 0;
            }
        }

        /** The values after the operation; checks the guards of an off-heap range. */
        float[] values() {
            if (heap != null) {
                return heap;
            }
            for (int i = 0; i < OFF; i++) {
                assertEquals(GUARD, direct.getFloat(4 * i), "value " + i + " before the range was overwritten");
            }
            assertEquals(GUARD, direct.getFloat(4 * (OFF + n)), "the value after the range was overwritten");
            final float[] out = new float[n];
            for (int i = 0; i < n; i++) {
                out[i] = direct.getFloat(4 * (OFF + i));
            }
            return out;
        }
    }

    /** Off-heap memory for one operand of up to {@code n} values plus the guards (direct, or mapped when a file is given). */
    static UnsafeBuffer memory(final int n, final Path mapFile) throws IOException {
        final int bytes = 4 * (n + OFF + 1);
        if (mapFile == null) {
            return new UnsafeBuffer(BufferUtil.allocateDirectAligned(bytes, 64));
        }
        try (FileChannel channel = FileChannel.open(mapFile, StandardOpenOption.CREATE_NEW, StandardOpenOption.READ,
            StandardOpenOption.WRITE)) {
            final MappedByteBuffer mapped = channel.map(FileChannel.MapMode.READ_WRITE, 0, bytes);
            return new UnsafeBuffer(mapped);
        }
    }

    /**
     * Every collective with float operands, in the same order on every rank; returns this rank's outputs
     * concatenated. With {@code offHeap} all operands live in off-heap buffers ({@code mapDir}: the
     * all-reduce operands in files mapped from there), else in float[].
     */
    static float[] script(final Communicator c, final boolean offHeap, final Path mapDir) throws IOException {
        final int p = c.size();
        final int rank = c.rank();
        final Fp8Compression fp8 = Fp8Compression.withErrorFeedback(Fp8Format.E4M3, 20_000);
        final int bucketN = 50_000;
        final Operand small = operand(RankThreads.values(1, rank, 5), offHeap, mapDir, "small");
        final Operand large = operand(RankThreads.values(2, rank, 300_001), offHeap, mapDir, "large");
        final Operand compressed = operand(RankThreads.values(3, rank, 20_000), offHeap, null, null);
        final Operand scattered = operand(RankThreads.values(4, rank, p * 1000), offHeap, null, null);
        final Operand gathered = operand(RankThreads.values(5, rank, p * 1000), offHeap, null, null);
        final Operand bcast = operand(rank == 1 ? RankThreads.values(6, 1, 70_000) : new float[70_000], offHeap, null, null);
        final Operand bcastSmall = operand(rank == 0 ? RankThreads.values(7, 0, 9) : new float[9], offHeap, null, null);
        final Operand bucket = operand(RankThreads.values(8, rank, bucketN), offHeap, null, null);
        final Operand asyncScatter = operand(RankThreads.values(9, rank, p * 777), offHeap, null, null);
        final Operand asyncGather = operand(RankThreads.values(10, rank, p * 555), offHeap, null, null);
        final int[] sendCounts = new int[p];
        final int[] recvCounts = new int[p];
        for (int j = 0; j < p; j++) {
            sendCounts[j] = 1000 * (j + 1) + rank; // uneven, and each pair's counts differ
            recvCounts[j] = 1000 * (rank + 1) + j;
        }
        final Operand send = operand(RankThreads.values(11, rank, Arrays.stream(sendCounts).sum()), offHeap, null, null);
        final Operand recv = operand(new float[Arrays.stream(recvCounts).sum()], offHeap, null, null);
        final Operand send8 = operand(RankThreads.values(12, rank, Arrays.stream(sendCounts).sum()), offHeap, null, null);
        final Operand recv8 = operand(new float[Arrays.stream(recvCounts).sum()], offHeap, null, null);
        final Operand ring = operand(RankThreads.values(13, rank, 4321), offHeap, null, null);
        final Operand ringIn = operand(new float[4321], offHeap, null, null);

        if (offHeap) {
            c.allReduce(small.direct, small.off, small.n, ReduceOp.SUM);
            c.allReduce(large.direct, large.off, large.n, ReduceOp.AVERAGE, null);
            for (int round = 0; round < 2; round++) { // the second round quantizes with the first one's residual
                c.allReduce(compressed.direct, compressed.off, compressed.n, ReduceOp.SUM, fp8);
            }
            c.reduceScatter(scattered.direct, scattered.off, 1000, ReduceOp.SUM, null);
            c.allGather(gathered.direct, gathered.off, 1000, null);
            c.broadcast(bcast.direct, bcast.off, bcast.n, 1);
            c.broadcast(bcastSmall.direct, bcastSmall.off, bcastSmall.n, 0);
            final CollectiveHandle a = c.allReduceAsync(bucket.direct, bucket.off, bucket.n, ReduceOp.AVERAGE, null);
            final CollectiveHandle b = c.reduceScatterAsync(asyncScatter.direct, asyncScatter.off, 777, ReduceOp.SUM, null);
            final CollectiveHandle g = c.allGatherAsync(asyncGather.direct, asyncGather.off, 555, null);
            final CollectiveHandle t = c.allToAllAsync(send8.direct, send8.off, sendCounts, recv8.direct, recv8.off, recvCounts,
                Fp8Compression.of(Fp8Format.E5M2));
            c.allToAll(send.direct, send.off, sendCounts, recv.direct, recv.off, recvCounts, null);
            for (final CollectiveHandle h : List.of(a, b, g, t)) {
                h.await(TimeUnit.SECONDS.toNanos(30));
            }
            // a ring of point-to-point messages: send to the right, receive from the left
            c.sendRecv((rank + 1) % p, ring.direct, ring.off, ring.n, (rank + p - 1) % p, ringIn.direct, ringIn.off, ringIn.n);
            if (rank == 0) {
                c.send(1, ring.direct, ring.off, 100);
            } else if (rank == 1) {
                c.recv(0, ringIn.direct, ringIn.off + 7, 100);
            }
        } else {
            c.allReduce(small.heap, 0, small.n, ReduceOp.SUM);
            c.allReduce(large.heap, 0, large.n, ReduceOp.AVERAGE, null);
            for (int round = 0; round < 2; round++) {
                c.allReduce(compressed.heap, 0, compressed.n, ReduceOp.SUM, fp8);
            }
            c.reduceScatter(scattered.heap, 0, 1000, ReduceOp.SUM, null);
            c.allGather(gathered.heap, 0, 1000, null);
            c.broadcast(bcast.heap, 0, bcast.n, 1);
            c.broadcast(bcastSmall.heap, 0, bcastSmall.n, 0);
            final CollectiveHandle a = c.allReduceAsync(bucket.heap, 0, bucket.n, ReduceOp.AVERAGE, null);
            final CollectiveHandle b = c.reduceScatterAsync(asyncScatter.heap, 0, 777, ReduceOp.SUM, null);
            final CollectiveHandle g = c.allGatherAsync(asyncGather.heap, 0, 555, null);
            final CollectiveHandle t = c.allToAllAsync(send8.heap, 0, sendCounts, recv8.heap, 0, recvCounts,
                Fp8Compression.of(Fp8Format.E5M2));
            c.allToAll(send.heap, 0, sendCounts, recv.heap, 0, recvCounts, null);
            for (final CollectiveHandle h : List.of(a, b, g, t)) {
                h.await(TimeUnit.SECONDS.toNanos(30));
            }
            c.sendRecv((rank + 1) % p, ring.heap, 0, ring.n, (rank + p - 1) % p, ringIn.heap, 0, ringIn.n);
            if (rank == 0) {
                c.send(1, ring.heap, 0, 100);
            } else if (rank == 1) {
                c.recv(0, ringIn.heap, 7, 100);
            }
        }
        final Operand[] all = {small, large, compressed, scattered, gathered, bcast, bcastSmall, bucket, asyncScatter,
            asyncGather, send, recv, send8, recv8, ring, ringIn};
        final float[][] parts = new float[all.length + 1][];
        for (int i = 0; i < all.length; i++) {
            parts[i] = all[i].values();
        }
        parts[all.length] = fp8.residual().clone();
        final int total = Arrays.stream(parts).mapToInt(v -> v.length).sum();
        final float[] out = new float[total];
        int at = 0;
        for (final float[] part : parts) {
            System.arraycopy(part, 0, out, at, part.length);
            at += part.length;
        }
        return out;
    }

    private static Operand operand(final float[] values, final boolean offHeap, final Path mapDir, final String name)
        throws IOException {
        if (!offHeap) {
            return new Operand(values, false, null);
        }
        return new Operand(values, true, memory(values.length, mapDir == null ? null
            : mapDir.resolve(name + "-" + Thread.currentThread().getName())));
    }

    static float[][] runInProcess(final int p, final boolean offHeap, final Path mapDir) {
        final List<Communicator> comms = InProcessCluster.create(p, 1 << 14, 1024).communicators(CONFIG);
        final float[][] out = new float[p][];
        RankThreads.run(p, 90_000, rank -> {
            try (Communicator c = comms.get(rank)) {
                out[rank] = script(c, offHeap, mapDir);
            }
        });
        return out;
    }

    @Test
    void shouldGiveTheFloatArrayBitsInProcess(@TempDir final Path dir) {
        for (final int p : new int[] {2, 3, 4}) {
            final float[][] heap = runInProcess(p, false, null);
            final Path mapDir = dir.resolve("p" + p);
            final float[][] offHeap = runInProcess(p, true, mkdirs(mapDir));
            for (int r = 0; r < p; r++) {
                assertArrayEquals(heap[r], offHeap[r], "p=" + p + " rank " + r + ": off-heap differs from float[]");
            }
        }
    }

    @Test
    void shouldGiveTheFloatArrayBitsOverAeronIpc() throws Exception {
        final int p = 3;
        final float[][] offHeap = new float[p][];
        try (AeronTestJob job = new AeronTestJob(); JobMediaDriver driver = JobMediaDriver.launch(job.ipcDirectory(),
            IdleMode.BACKOFF)) {
            final Path mapDir = mkdirs(job.root.resolve("mapped"));
            RankThreads.run(p, 150_000, rank -> {
                try (Communicator c = Communicators.create(AeronTransport.connect(job.ipc(rank, p)), CONFIG)) {
                    offHeap[rank] = script(c, true, mapDir);
                    assertTrue(c.counters().bytesReceived() > 1_000_000, c.counters().toString());
                }
            });
        }
        final float[][] heap = runInProcess(p, false, null);
        for (int r = 0; r < p; r++) {
            assertArrayEquals(heap[r], offHeap[r], "rank " + r + ": off-heap over IPC differs from float[] in-process");
        }
    }

    @Test
    void shouldNotAllocatePerOffHeapOperation() throws Exception {
        final int p = 2;
        final com.sun.management.ThreadMXBean threads = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        final long[][] fewest = new long[2][p];
        for (final long[] f : fewest) {
            Arrays.fill(f, Long.MAX_VALUE);
        }
        try (AeronTestJob job = new AeronTestJob(); JobMediaDriver driver = JobMediaDriver.launch(job.ipcDirectory(),
            IdleMode.BACKOFF)) {
            for (int backend = 0; backend < 2; backend++) {
                final List<Communicator> inProcess = backend == 0 ? InProcessCluster.create(p).communicators(CONFIG) : null;
                final int b = backend;
                RankThreads.run(p, 120_000, rank -> {
                    try (Communicator c = b == 0 ? inProcess.get(rank)
                        : Communicators.create(AeronTransport.connect(job.ipc(rank, p)), CONFIG)) {
                        final UnsafeBuffer small = new UnsafeBuffer(BufferUtil.allocateDirectAligned(64, 64));
                        final UnsafeBuffer large = new UnsafeBuffer(BufferUtil.allocateDirectAligned(4 * 300_000, 64));
                        final UnsafeBuffer out = new UnsafeBuffer(BufferUtil.allocateDirectAligned(4 * 300_000, 64));
                        final int[] counts = {150_000, 150_000};
                        final Fp8Compression fp8 = Fp8Compression.withErrorFeedback(Fp8Format.E4M3, 300_000);
                        final long self = Thread.currentThread().getId();
                        // 8 rounds: until C2 compiles the FP8 encoder its Vector API code allocates (boxes), and a
                        // loaded machine compiles late
                        for (int round = 0; round < 8; round++) {
                            final long before = threads.getThreadAllocatedBytes(self);
                            for (int i = 0; i < 100; i++) {
                                c.allReduce(small, 0, 4, ReduceOp.SUM);
                                if (i % 20 == 0) {
                                    c.allReduce(large, 0, 300_000, ReduceOp.AVERAGE, null);
                                    c.allReduce(large, 0, 300_000, ReduceOp.SUM, fp8);
                                    c.reduceScatter(large, 0, 150_000, ReduceOp.SUM, null);
                                    c.allGather(large, 0, 150_000, null);
                                    c.broadcast(large, 0, 300_000, 1);
                                    c.allToAll(large, 0, counts, out, 0, counts, null);
                                    c.sendRecv(1 - rank, large, 0, 1000, 1 - rank, out, 0, 1000);
                                }
                            }
                            final long bytes = threads.getThreadAllocatedBytes(self) - before;
                            if (round > 0) {
                                fewest[b][rank] = Math.min(fewest[b][rank], bytes); // the JIT may allocate now and then
                            }
                        }
                    }
                });
            }
        }
        for (int b = 0; b < 2; b++) {
            for (int r = 0; r < p; r++) {
                assertEquals(0, fewest[b][r], (b == 0 ? "in-process" : "aeron ipc") + " rank " + r
                    + ": fewest bytes allocated in a round of 135 off-heap operations");
            }
        }
    }

    @Test
    void shouldNameTheBufferThatIsTooSmall() {
        final List<Communicator> comms = InProcessCluster.create(2).communicators(CONFIG);
        final UnsafeBuffer buf = new UnsafeBuffer(ByteBuffer.allocateDirect(40)); // 10 values
        final IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
            () -> comms.get(0).allReduce(buf, 2, 9, ReduceOp.SUM));
        assertTrue(e.getMessage().contains("off=2 count=9") && e.getMessage().contains("length=10"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> comms.get(0).allReduce((UnsafeBuffer) null, 0, 1, ReduceOp.SUM));
        comms.forEach(Communicator::close);
    }

    private static Path mkdirs(final Path dir) {
        try {
            Files.createDirectories(dir);
        } catch (final IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
        return dir;
    }
}
