package io.moeflow.checkpoint;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.zip.CRC32;

/**
 * Checkpoint write throughput next to a plain sequential write of the same number of bytes on the same disk, in the
 * same run ({@code moeflow bench checkpoint}).
 *
 * <p>Per repeat, alternating so that drift on a shared machine hits all of them alike:
 * <ul>
 * <li><b>checkpoint</b>: a synchronous {@link CheckpointWriter} save, from {@code begin} to committed: the copy into
 * staging, checksums, jHDF writing both files, fsync, rename, {@code latest};</li>
 * <li><b>plain</b>: the same float arrays converted to little-endian bytes through one 8 MiB direct buffer and written
 * with a {@link FileChannel} to one file of the checkpoint's total size, then fsync;</li>
 * <li><b>jHDF direct</b> and <b>jHDF coalesced</b>: only the two HDF5 files written from the staged arrays plus fsync,
 * once with jHDF's own file channel and once through {@link CoalescingFileChannel}, to show where the time goes.</li>
 * </ul>
 * Figures are medians over the repeats, in MB/s (10^6 bytes per second).
 */
public final class CheckpointBenchmark {
    /** The shape of a GPT-style MoE model, for a realistic mix of tensor sizes. */
    public record ModelShape(String name, int vocab, int seqLen, int channels, int layers, int experts,
        int expertHidden) {
        /** The bench model of the training benchmark: V=256, T=128, C=128, L=2, E=16, F=256, about 2.3 M params. */
        public static final ModelShape BENCH = new ModelShape("bench", 256, 128, 128, 2, 16, 256);

        /** A larger one of about 98 M params: V=8192, T=512, C=512, L=5, E=16, F=1024. */
        public static final ModelShape LARGE = new ModelShape("large", 8192, 512, 512, 5, 16, 1024);

        /** Parameters (model.h5) and AdamW moments (state.h5), PyTorch names, plus a step counter. */
        public CheckpointLayout layout() {
            final List<TensorSpec> params = parameters();
            final CheckpointLayout.Builder b = CheckpointLayout.builder();
            params.forEach(b::add);
            for (final String moment : new String[] {"exp_avg", "exp_avg_sq"}) {
                for (final TensorSpec p : params) {
                    b.add(new TensorSpec(CheckpointFile.STATE, "optimizer/" + moment + "/" + p.name(), DType.FLOAT32,
                        p.shape()));
                }
            }
            return b.int64(CheckpointFile.STATE, "step").build();
        }

        /** The parameter tensors. */
        List<TensorSpec> parameters() {
            final int c = channels;
            final List<TensorSpec> t = new ArrayList<>();
            t.add(TensorSpec.float32(CheckpointFile.MODEL, "wte.weight", vocab, c));
            t.add(TensorSpec.float32(CheckpointFile.MODEL, "wpe.weight", seqLen, c));
            for (int l = 0; l < layers; l++) {
                final String p = "blocks." + l + ".";
                t.add(TensorSpec.float32(CheckpointFile.MODEL, p + "ln1.weight", c));
                t.add(TensorSpec.float32(CheckpointFile.MODEL, p + "ln1.bias", c));
                t.add(TensorSpec.float32(CheckpointFile.MODEL, p + "attn.qkv.weight", 3L * c, c));
                t.add(TensorSpec.float32(CheckpointFile.MODEL, p + "attn.qkv.bias", 3L * c));
                t.add(TensorSpec.float32(CheckpointFile.MODEL, p + "attn.proj.weight", c, c));
                t.add(TensorSpec.float32(CheckpointFile.MODEL, p + "attn.proj.bias", c));
                t.add(TensorSpec.float32(CheckpointFile.MODEL, p + "ln2.weight", c));
                t.add(TensorSpec.float32(CheckpointFile.MODEL, p + "ln2.bias", c));
                t.add(TensorSpec.float32(CheckpointFile.MODEL, p + "moe.router.weight", experts, c));
                for (int e = 0; e < experts; e++) {
                    final String ep = p + "moe.experts." + e + ".";
                    t.add(TensorSpec.float32(CheckpointFile.MODEL, ep + "w1.weight", expertHidden, c));
                    t.add(TensorSpec.float32(CheckpointFile.MODEL, ep + "w1.bias", expertHidden));
                    t.add(TensorSpec.float32(CheckpointFile.MODEL, ep + "w2.weight", c, expertHidden));
                    t.add(TensorSpec.float32(CheckpointFile.MODEL, ep + "w2.bias", c));
                }
            }
            t.add(TensorSpec.float32(CheckpointFile.MODEL, "lnf.weight", c));
            t.add(TensorSpec.float32(CheckpointFile.MODEL, "lnf.bias", c));
            t.add(TensorSpec.float32(CheckpointFile.MODEL, "head.weight", vocab, c));
            return t;
        }
    }

    /**
     * Medians of one model's measurements.
     *
     * @param model              the model shape's name
     * @param parameters         parameter count
     * @param bytes              total bytes of one checkpoint (both HDF5 files and the manifest)
     * @param repeats            measurements per variant
     * @param checkpointMBps     full synchronous checkpoint save
     * @param plainMBps          plain sequential write + fsync of {@code bytes}
     * @param jhdfDirectMBps     the two HDF5 files through jHDF's own channel + fsync
     * @param jhdfCoalescedMBps  the two HDF5 files through the coalescing channel + fsync
     * @param stallNs            caller time of an asynchronous save (wait + copy into staging), median
     * @param copyShare          share of the checkpoint save time spent copying into staging
     * @param checksumShare      share spent computing CRC-32s
     * @param writeShare         share spent writing the files
     * @param syncShare          share spent in fsync
     * @param commitShare        share spent renaming, updating {@code latest}, retention
     */
    public record Result(String model, long parameters, long bytes, int repeats, double checkpointMBps,
        double plainMBps, double jhdfDirectMBps, double jhdfCoalescedMBps, long stallNs, double copyShare,
        double checksumShare, double writeShare, double syncShare, double commitShare) {
        /** Checkpoint throughput over plain throughput; the aim is at least 0.5. */
        public double ratio() {
            return checkpointMBps / plainMBps;
        }

        @Override
        public String toString() {
            return String.format("%s: %,d params, %.1f MB per checkpoint, median of %d%n"
                    + "  checkpoint save      %8.1f MB/s%n"
                    + "  plain write + fsync  %8.1f MB/s   ratio %.2f%n"
                    + "  save time: copy %.0f%%, crc32 %.0f%%, write %.0f%%, fsync %.0f%%, rename+latest %.0f%%%n"
                    + "  HDF5 files + fsync: jHDF direct %.1f MB/s, through the coalescing channel %.1f MB/s%n"
                    + "  async save stall (copy into staging) %.1f ms",
                model, parameters, bytes / 1e6, repeats, checkpointMBps, plainMBps, ratio(), 100 * copyShare,
                100 * checksumShare, 100 * writeShare, 100 * syncShare, 100 * commitShare, jhdfDirectMBps,
                jhdfCoalescedMBps, stallNs / 1e6);
        }
    }

    private static final int PLAIN_BUFFER_BYTES = 8 << 20;

    private final Path workDir;

    /** @param workDir a directory on the disk to measure; the benchmark removes what it writes */
    public CheckpointBenchmark(final Path workDir) {
        this.workDir = workDir;
    }

    /** Measures the bench model and the large one, {@code repeats} times each. */
    public List<Result> runAll(final int repeats) {
        return List.of(run(ModelShape.BENCH, repeats), run(ModelShape.LARGE, repeats));
    }

    /**
     * Measures one model shape.
     *
     * @throws CheckpointException if writing fails
     */
    public Result run(final ModelShape shape, final int repeats) {
        if (repeats < 1) {
            throw new IllegalArgumentException("repeats=" + repeats + " must be >= 1");
        }
        final CheckpointLayout layout = shape.layout();
        final List<TensorSpec> tensors = layout.tensors();
        final float[][] sources = sources(tensors);
        final Path root = workDir.resolve("checkpoint-bench-" + ProcessHandle.current().pid());
        final double[] checkpoint = new double[repeats];
        final double[] plain = new double[repeats];
        final double[] direct = new double[repeats];
        final double[] coalesced = new double[repeats];
        final long[] stall = new long[repeats];
        final double[] shares = new double[5];
        long bytes = 0;
        try {
            Files.createDirectories(root);
            final RunMetadata metadata = RunMetadata.of(shape.toString(), "benchmark", null, 1);
            final Staging staging = new Staging(layout);
            fill(staging, tensors, sources);
            for (int r = 0; r < repeats; r++) {
                // Checkpoint: a synchronous save, timed from begin to committed.
                final Path ckptDir = root.resolve("ckpt");
                try (CheckpointWriter w = new CheckpointWriter(new CheckpointConfig(ckptDir, 1, false,
                    CheckpointConfig.DEFAULT_SAVE_TIMEOUT_NS), layout, metadata)) {
                    final long t0 = System.nanoTime();
                    final SaveTicket ticket = save(w, 1, tensors, sources);
                    final long t1 = System.nanoTime();
                    final SaveResult result = w.pollCompleted().get(0);
                    bytes = result.bytes();
                    checkpoint[r] = bytes / 1e6 / ((t1 - t0) / 1e9);
                    final double total = t1 - t0;
                    final long copyNs = ticket.stallNs() - result.totalNs();
                    shares[0] += copyNs / total / repeats;
                    shares[1] += result.checksumNs() / total / repeats;
                    shares[2] += result.writeNs() / total / repeats;
                    shares[3] += result.syncNs() / total / repeats;
                    shares[4] += result.commitNs() / total / repeats;
                }
                DurableFiles.deleteRecursively(ckptDir);

                // The caller-side stall of an asynchronous save (the wait is zero: nothing in flight).
                try (CheckpointWriter w = new CheckpointWriter(new CheckpointConfig(ckptDir, 1, true,
                    CheckpointConfig.DEFAULT_SAVE_TIMEOUT_NS), layout, metadata)) {
                    stall[r] = save(w, 1, tensors, sources).stallNs();
                    w.awaitIdle();
                }
                DurableFiles.deleteRecursively(ckptDir);

                plain[r] = plainWrite(root.resolve("plain.bin"), bytes, sources);
                direct[r] = jhdfOnly(root.resolve("direct"), staging, null);
                coalesced[r] = jhdfOnly(root.resolve("coalesced"),
                    staging, ByteBuffer.allocateDirect(CheckpointWriter.COALESCE_BUFFER_BYTES));
            }
        } catch (final IOException e) {
            throw new CheckpointException(root, null, null, "benchmark I/O failed: " + e,
                "check free space in " + workDir, e);
        } finally {
            try {
                DurableFiles.deleteRecursively(root);
            } catch (final IOException ignored) {
                // Leaves a directory named checkpoint-bench-<pid> behind; harmless.
            }
        }
        long parameters = 0;
        for (final TensorSpec t : tensors) {
            parameters += t.file() == CheckpointFile.MODEL ? t.elements() : 0;
        }
        return new Result(shape.name(), parameters, bytes, repeats, median(checkpoint), median(plain),
            median(direct), median(coalesced), (long) median(Arrays.stream(stall).asDoubleStream().toArray()),
            shares[0], shares[1], shares[2], shares[3], shares[4]);
    }

    /** One deterministic pseudo-random float array per tensor (the values do not matter for speed). */
    private static float[][] sources(final List<TensorSpec> tensors) {
        final SplittableRandom random = new SplittableRandom(42);
        final float[][] sources = new float[tensors.size()][];
        for (int i = 0; i < sources.length; i++) {
            if (tensors.get(i).dtype() == DType.FLOAT32) {
                sources[i] = new float[tensors.get(i).elements()];
                for (int k = 0; k < sources[i].length; k++) {
                    sources[i][k] = (float) random.nextGaussian();
                }
            }
        }
        return sources;
    }

    private static SaveTicket save(final CheckpointWriter w, final long step, final List<TensorSpec> tensors,
        final float[][] sources) {
        final CheckpointWriter.Snapshot s = w.begin(step);
        for (int i = 0; i < tensors.size(); i++) {
            final TensorSpec t = tensors.get(i);
            if (t.dtype() == DType.FLOAT32) {
                s.float32(t.file(), t.name(), sources[i], 0);
            } else {
                s.int64(t.file(), t.name(), step);
            }
        }
        return w.commit(s);
    }

    private static void fill(final Staging staging, final List<TensorSpec> tensors, final float[][] sources) {
        for (int i = 0; i < tensors.size(); i++) {
            if (sources[i] != null) {
                staging.copyIn(i, sources[i], 0);
            }
        }
    }

    /**
     * Writes the sources' floats as little-endian bytes through one direct buffer, pads to {@code bytes} (the
     * checkpoint's size, which adds its HDF5 metadata), fsyncs; returns MB/s.
     */
    private static double plainWrite(final Path file, final long bytes, final float[][] sources) throws IOException {
        final ByteBuffer buffer = LittleEndian.allocate(PLAIN_BUFFER_BYTES);
        final long t0 = System.nanoTime();
        try (FileChannel channel = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
            StandardOpenOption.TRUNCATE_EXISTING)) {
            long written = 0;
            for (final float[] source : sources) {
                for (int from = 0; source != null && from < source.length; ) {
                    final int n = Math.min(source.length - from, buffer.remaining() / 4);
                    LittleEndian.put(DType.FLOAT32, source, from, n, buffer);
                    from += n;
                    if (!buffer.hasRemaining()) {
                        written += writeAll(channel, buffer.flip());
                        buffer.clear();
                    }
                }
            }
            written += writeAll(channel, buffer.flip());
            while (written < bytes) {
                buffer.clear().limit((int) Math.min(buffer.capacity(), bytes - written));
                written += writeAll(channel, buffer);
            }
            channel.force(true);
        }
        final long t1 = System.nanoTime();
        final long size = Files.size(file);
        Files.delete(file);
        return size / 1e6 / ((t1 - t0) / 1e9);
    }

    /** Writes the buffer's remaining bytes. */
    private static long writeAll(final FileChannel channel, final ByteBuffer buffer) throws IOException {
        long n = 0;
        while (buffer.hasRemaining()) {
            n += channel.write(buffer);
        }
        return n;
    }

    /** Writes only the two HDF5 files from the staged arrays (checksums precomputed), then fsyncs them. */
    private static double jhdfOnly(final Path dir, final Staging staging, final ByteBuffer coalesceBuffer)
        throws IOException {
        final long[] crc32 = new long[staging.layout.size()];
        final CRC32 crc = new CRC32();
        final ByteBuffer scratch = LittleEndian.allocate(CheckpointWriter.SCRATCH_BYTES);
        for (int i = 0; i < crc32.length; i++) {
            crc32[i] = staging.crc32(i, crc, scratch);
        }
        Files.createDirectories(dir);
        final long t0 = System.nanoTime();
        long bytes = 0;
        for (final CheckpointFile file : CheckpointFile.values()) {
            final Path path = dir.resolve(file.fileName());
            JhdfFileWriter.write(path, file, staging, crc32, Map.of(CheckpointFormat.ATTR_KIND, file.kind()),
                coalesceBuffer);
            DurableFiles.fsyncFile(path);
            bytes += Files.size(path);
        }
        final long t1 = System.nanoTime();
        DurableFiles.deleteRecursively(dir);
        return bytes / 1e6 / ((t1 - t0) / 1e9);
    }

    private static double median(final double[] values) {
        final double[] sorted = values.clone();
        Arrays.sort(sorted);
        final int n = sorted.length;
        return n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
    }
}
