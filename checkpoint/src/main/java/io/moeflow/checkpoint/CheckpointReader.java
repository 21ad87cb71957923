package io.moeflow.checkpoint;

import io.jhdf.HdfFile;
import io.jhdf.api.Attribute;
import io.jhdf.api.Dataset;
import io.jhdf.api.Group;
import io.jhdf.api.Node;
import io.jhdf.api.dataset.ContiguousDataset;
import io.jhdf.object.datatype.DataType;
import io.jhdf.object.datatype.FixedPoint;
import io.jhdf.object.datatype.FloatingPoint;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Collections;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;
import java.util.zip.CRC32;

/**
 * One checkpoint directory, opened for reading.
 *
 * <p>{@link #open} checks the structure: the manifest, every file's size, the HDF5 metadata (parsed with jHDF), the
 * format magic, version, kind and step. Tensor data is read straight from the file (the dataset's contiguous
 * little-endian bytes, in blocks through one reusable buffer) and every read checks the dataset's CRC-32; so does
 * {@link #verify()} for all of them at once. Any failure is a {@link CheckpointException} naming the directory, file
 * and dataset. When a read fails its destination array holds partial data and must not be used.
 *
 * <p>Not thread-safe.
 */
public final class CheckpointReader implements AutoCloseable {
    /** Block size of data reads: large enough for sequential disk reads, small enough to stay in cache. */
    private static final int BLOCK_BYTES = 1 << 20;

    private final Path directory;
    private final long step;
    private final long formatVersion;
    private final Map<CheckpointFile, Map<String, Object>> attributes = new EnumMap<>(CheckpointFile.class);
    private final Map<CheckpointFile, Map<String, Entry>> entries = new EnumMap<>(CheckpointFile.class);
    private final Map<CheckpointFile, FileChannel> channels = new EnumMap<>(CheckpointFile.class);
    /** A sharded checkpoint's rank parts (each a plain checkpoint directory), whose entries this reader merges. */
    private final List<CheckpointReader> parts = new ArrayList<>();
    /** A sharded checkpoint's metadata, or null for a plain one. */
    private ShardedMetadata sharded;
    private final ByteBuffer block = LittleEndian.allocate(BLOCK_BYTES);
    private final CRC32 crc = new CRC32();
    private long dataBytesRead;

    /** A dataset: its spec, where its bytes start in its file, its stored checksum, and the file to read from. */
    private record Entry(TensorSpec spec, long address, long crc32, FileChannel channel) {
        Entry withChannel(final FileChannel fileChannel) {
            return new Entry(spec, address, crc32, fileChannel);
        }
    }

    private CheckpointReader(final Path directory, final Manifest manifest) {
        this.directory = directory;
        this.step = manifest.step();
        this.formatVersion = manifest.version();
    }

    /**
     * Opens and structurally validates a checkpoint directory (not the data checksums: see {@link #verify()}).
     *
     * @throws CheckpointException if anything is missing, truncated, malformed or of a newer format
     */
    public static CheckpointReader open(final Path directory) {
        if (!Files.isDirectory(directory)) {
            throw new CheckpointException(directory, null, null, "no such directory",
                "give a checkpoint directory such as runs/<name>/checkpoints/step-00000400, or use --resume auto");
        }
        if (Files.exists(directory.resolve(CheckpointFormat.SHARDED_METADATA))) {
            return openSharded(directory);
        }
        if (!Files.exists(directory.resolve(CheckpointFormat.MANIFEST))
            && Files.isDirectory(directory.resolve(CheckpointFormat.shardName(0)))) {
            throw new CheckpointException(directory, CheckpointFormat.SHARDED_METADATA, null,
                "an incomplete sharded checkpoint: it has rank parts but no " + CheckpointFormat.SHARDED_METADATA
                    + " (rank 0 writes it last, once every rank has written and synced its part)",
                "resume from a complete checkpoint; --resume auto never picks an incomplete one");
        }
        final Manifest manifest = Manifest.read(directory);
        final CheckpointReader reader = new CheckpointReader(directory, manifest);
        try {
            final String dirName = directory.getFileName().toString();
            CheckpointFormat.parseStep(dirName).ifPresent(named -> {
                if (named != manifest.step()) {
                    throw new CheckpointException(directory, CheckpointFormat.MANIFEST, null,
                        "the directory name says step " + named + " but the manifest says step " + manifest.step(),
                        "the checkpoint was renamed or mixed up with another; resume from another checkpoint");
                }
            });
            for (final CheckpointFile file : CheckpointFile.values()) {
                reader.openFile(file, manifest);
            }
            return reader;
        } catch (final RuntimeException e) {
            reader.close();
            throw e;
        }
    }

    /**
     * A sharded checkpoint: the metadata, then every rank part (a plain checkpoint directory of the tensors that rank
     * wrote), merged into one set of named tensors. Each tensor must be in the part the metadata names, and in no
     * other, so a reader of any world size finds every tensor once, by name.
     */
    private static CheckpointReader openSharded(final Path directory) {
        final ShardedMetadata metadata = ShardedMetadata.read(directory);
        final CheckpointReader reader = new CheckpointReader(directory, new Manifest(metadata.version(),
            metadata.step(), Map.of()));
        reader.sharded = metadata;
        try {
            CheckpointFormat.parseStep(directory.getFileName().toString()).ifPresent(named -> {
                if (named != metadata.step()) {
                    throw new CheckpointException(directory, CheckpointFormat.SHARDED_METADATA, null,
                        "the directory name says step " + named + " but the metadata says step " + metadata.step(),
                        "the checkpoint was renamed or mixed up with another; resume from another checkpoint");
                }
            });
            for (final CheckpointFile file : CheckpointFile.values()) {
                reader.entries.put(file, new TreeMap<>());
            }
            for (int rank = 0; rank < metadata.worldSize(); rank++) {
                final CheckpointReader part = open(directory.resolve(CheckpointFormat.shardName(rank)));
                reader.parts.add(part);
                if (part.step() != metadata.step()) {
                    throw reader.corrupt(CheckpointFormat.shardName(rank), null, "this part holds step " + part.step()
                        + " but the metadata says step " + metadata.step());
                }
                for (final CheckpointFile file : CheckpointFile.values()) {
                    for (final Entry e : part.entries.get(file).values()) {
                        final String name = e.spec().name();
                        final Integer owner = metadata.tensors().get(file.fileName() + " " + name);
                        if (owner == null || owner != rank) {
                            throw reader.corrupt(CheckpointFormat.shardName(rank) + "/" + file.fileName(), name,
                                "the metadata says this tensor is in " + (owner == null ? "no part"
                                    : CheckpointFormat.shardName(owner)));
                        }
                        reader.entries.get(file).put(name, e);
                    }
                }
            }
            final int found = reader.entries.values().stream().mapToInt(Map::size).sum();
            if (found != metadata.tensors().size()) {
                throw reader.corrupt(CheckpointFormat.SHARDED_METADATA, null, "it lists " + metadata.tensors().size()
                    + " tensors but the rank parts hold " + found);
            }
            for (final CheckpointFile file : CheckpointFile.values()) {
                reader.attributes.put(file, reader.parts.get(0).attributes(file));
                reader.entries.put(file, Collections.unmodifiableMap(reader.entries.get(file)));
            }
            return reader;
        } catch (final RuntimeException e) {
            reader.close();
            throw e;
        }
    }

    /** For a sharded checkpoint, its metadata (world size, job properties such as expert owners); else empty. */
    public Optional<ShardedMetadata> shardedMetadata() {
        return Optional.ofNullable(sharded);
    }

    private void openFile(final CheckpointFile file, final Manifest manifest) {
        final String name = file.fileName();
        final Path path = directory.resolve(name);
        final Long expectedSize = manifest.fileSizes().get(name);
        if (expectedSize == null) {
            throw corrupt(name, null, "the manifest does not list " + name);
        }
        final long size;
        try {
            size = Files.size(path);
        } catch (final IOException e) {
            throw new CheckpointException(directory, name, null, "cannot read the file: " + e,
                "the checkpoint is incomplete; resume from another checkpoint (--resume auto skips broken ones)", e);
        }
        if (size != expectedSize) {
            throw corrupt(name, null, "the file is " + size + " bytes but the manifest says " + expectedSize
                + (size < expectedSize ? " (truncated)" : ""));
        }
        final Map<String, Object> attrs = new TreeMap<>();
        final Map<String, Entry> datasets = new TreeMap<>();
        try (HdfFile hdf = new HdfFile(path)) {
            for (final Map.Entry<String, Attribute> a : hdf.getAttributes().entrySet()) {
                attrs.put(a.getKey(), a.getValue().getData());
            }
            checkRootAttributes(file, attrs);
            collect(file, hdf, "", hdf.getUserBlockSize(), size, datasets);
        } catch (final CheckpointException e) {
            throw e;
        } catch (final RuntimeException e) {
            throw corrupt(name, null, "cannot parse its HDF5 structure (jHDF: " + e + ")", e);
        }
        final FileChannel channel;
        try {
            channel = FileChannel.open(path, StandardOpenOption.READ);
        } catch (final IOException e) {
            throw new CheckpointException(directory, name, null, "cannot open the file: " + e,
                "check the file's permissions", e);
        }
        channels.put(file, channel);
        datasets.replaceAll((k, e) -> e.withChannel(channel));
        attributes.put(file, Collections.unmodifiableMap(attrs));
        entries.put(file, Collections.unmodifiableMap(datasets));
    }

    private void checkRootAttributes(final CheckpointFile file, final Map<String, Object> attrs) {
        final String name = file.fileName();
        final Object magic = attrs.get(CheckpointFormat.ATTR_FORMAT);
        if (!CheckpointFormat.MAGIC.equals(magic)) {
            throw new CheckpointException(directory, name, null, "not a MoEFlow checkpoint file ("
                + CheckpointFormat.ATTR_FORMAT + "=" + magic + ", expected '" + CheckpointFormat.MAGIC + "')",
                "point --resume at a directory written by MoEFlow");
        }
        final Object version = attrs.get(CheckpointFormat.ATTR_VERSION);
        if (!(version instanceof Long)) {
            throw corrupt(name, null, "the " + CheckpointFormat.ATTR_VERSION + " attribute is " + version);
        }
        Manifest.checkVersion(directory, name, (Long) version);
        if (!file.kind().equals(attrs.get(CheckpointFormat.ATTR_KIND))) {
            throw corrupt(name, null, "its " + CheckpointFormat.ATTR_KIND + " attribute is "
                + attrs.get(CheckpointFormat.ATTR_KIND) + ", expected '" + file.kind() + "'");
        }
        final Object fileStep = attrs.get(CheckpointFormat.ATTR_STEP);
        if (!(fileStep instanceof Long) || (Long) fileStep != step) {
            throw corrupt(name, null, "its step attribute is " + fileStep + " but the manifest says " + step);
        }
    }

    /** Walks a group, recording every dataset under its path relative to the root. */
    private void collect(final CheckpointFile file, final Group group, final String prefix, final long userBlock,
        final long fileSize, final Map<String, Entry> out) {
        for (final Node node : group.getChildren().values()) {
            final String path = prefix + node.getName();
            if (node instanceof Group) {
                collect(file, (Group) node, path + "/", userBlock, fileSize, out);
            } else if (node instanceof Dataset) {
                out.put(path, entry(file, path, (Dataset) node, userBlock, fileSize));
            }
        }
    }

    private Entry entry(final CheckpointFile file, final String path, final Dataset dataset, final long userBlock,
        final long fileSize) {
        final String name = file.fileName();
        final DType dtype = dtypeOf(dataset.getDataType());
        if (dtype == null) {
            throw corrupt(name, path, "unsupported element type " + dataset.getDataType().getClass().getSimpleName()
                + " of " + dataset.getDataType().getSize() + " bytes; MoEFlow stores little-endian float32, float64, "
                + "int64 and int32 only");
        }
        if (!(dataset instanceof ContiguousDataset)) {
            throw corrupt(name, path, "stored with " + dataset.getDataLayout() + " layout; MoEFlow writes and reads "
                + "CONTIGUOUS datasets only (a repacked or compressed file cannot be read)");
        }
        final TensorSpec spec;
        try {
            spec = new TensorSpec(file, path, dtype, dataset.getDimensionsAsLong());
        } catch (final IllegalArgumentException e) {
            throw corrupt(name, path, e.getMessage(), e);
        }
        final long address = ((ContiguousDataset) dataset).getDataAddress() + userBlock;
        if (address < 0 || address + spec.sizeBytes() > fileSize) {
            throw corrupt(name, path, "its data [" + address + ", " + (address + spec.sizeBytes())
                + ") lies outside the file of " + fileSize + " bytes");
        }
        final Attribute crcAttribute = dataset.getAttribute(CheckpointFormat.ATTR_CRC32);
        if (crcAttribute == null || !(crcAttribute.getData() instanceof Long)) {
            throw corrupt(name, path, "it has no int64 '" + CheckpointFormat.ATTR_CRC32 + "' attribute");
        }
        return new Entry(spec, address, (Long) crcAttribute.getData(), null);
    }

    private static DType dtypeOf(final DataType type) {
        if (type instanceof FloatingPoint f && f.getByteOrder() == ByteOrder.LITTLE_ENDIAN) {
            return type.getSize() == 4 ? DType.FLOAT32 : type.getSize() == 8 ? DType.FLOAT64 : null;
        }
        if (type instanceof FixedPoint f && f.isSigned() && f.getByteOrder() == ByteOrder.LITTLE_ENDIAN) {
            return type.getSize() == 4 ? DType.INT32 : type.getSize() == 8 ? DType.INT64 : null;
        }
        return null;
    }

    /**
     * Tensor data bytes read from the files so far (each read and {@link #verify()} streams a dataset's bytes once), so
     * a caller can tell how often it read the checkpoint.
     */
    public long dataBytesRead() {
        return dataBytesRead;
    }

    /** Total data bytes of every tensor of both files: what one full read streams. */
    public long dataBytes() {
        long bytes = 0;
        for (final Map<String, Entry> file : entries.values()) {
            for (final Entry e : file.values()) {
                bytes += e.spec().sizeBytes();
            }
        }
        return bytes;
    }

    /** The checkpoint directory. */
    public Path directory() {
        return directory;
    }

    /** The training step the checkpoint was saved at. */
    public long step() {
        return step;
    }

    /** The format version the checkpoint was written in. */
    public long formatVersion() {
        return formatVersion;
    }

    /** Root attributes of a file: {@code String} or {@code Long} values, sorted by name. */
    public Map<String, Object> attributes(final CheckpointFile file) {
        return attributes.get(file);
    }

    /** The resolved configuration text stored at save time ({@code config} attribute of model.h5). */
    public String config() {
        return String.valueOf(attributes.get(CheckpointFile.MODEL).get(CheckpointFormat.ATTR_CONFIG));
    }

    /** The save time, ISO-8601 UTC ({@code created_utc} attribute). */
    public String createdUtc() {
        return String.valueOf(attributes.get(CheckpointFile.MODEL).get(CheckpointFormat.ATTR_CREATED_UTC));
    }

    /** The run metadata stored at save time (config, provenance, extra string attributes) from model.h5. */
    public RunMetadata metadata() {
        final Map<String, Object> attrs = attributes.get(CheckpointFile.MODEL);
        final Map<String, String> extra = new TreeMap<>();
        attrs.forEach((k, v) -> {
            if (!CheckpointFormat.STANDARD_ATTRIBUTES.contains(k) && v instanceof String) {
                extra.put(k, (String) v);
            }
        });
        final Object worldSize = attrs.get(CheckpointFormat.ATTR_WORLD_SIZE);
        try {
            return new RunMetadata(config(), String.valueOf(attrs.get(CheckpointFormat.ATTR_PROJECT_VERSION)),
                String.valueOf(attrs.get(CheckpointFormat.ATTR_GIT_COMMIT)),
                String.valueOf(attrs.get(CheckpointFormat.ATTR_JAVA_VERSION)),
                worldSize instanceof Long ? Math.toIntExact((Long) worldSize) : 0, extra);
        } catch (final IllegalArgumentException | ArithmeticException e) {
            throw corrupt(CheckpointFile.MODEL.fileName(), null, "its provenance attributes are invalid: "
                + e.getMessage(), e);
        }
    }

    /** Every tensor of a file, sorted by name. */
    public List<TensorSpec> tensors(final CheckpointFile file) {
        final List<TensorSpec> out = new ArrayList<>();
        entries.get(file).values().forEach(e -> out.add(e.spec()));
        return out;
    }

    /** One tensor, if the file has it. */
    public Optional<TensorSpec> tensor(final CheckpointFile file, final String name) {
        final Entry e = entries.get(file).get(name);
        return e == null ? Optional.empty() : Optional.of(e.spec());
    }

    /** Number of parameters: the element count over all tensors of model.h5. */
    public long parameterCount() {
        long n = 0;
        for (final Entry e : entries.get(CheckpointFile.MODEL).values()) {
            n += e.spec().elements();
        }
        return n;
    }

    /**
     * Checks that the checkpoint holds exactly the layout's tensors with the same dtypes and shapes, before anything is
     * loaded. The first difference is reported with both shapes, e.g. after a change of the model config.
     *
     * @throws CheckpointException naming the first mismatching tensor
     */
    public void checkLayout(final CheckpointLayout layout) {
        for (final TensorSpec expected : layout.tensors()) {
            final Entry found = entries.get(expected.file()).get(expected.name());
            if (found == null) {
                throw mismatch(expected.file(), expected.name(), "the checkpoint has no such tensor; the current "
                    + "run expects " + expected.dtype() + expected.shapeText());
            }
            final TensorSpec actual = found.spec();
            if (actual.dtype() != expected.dtype() || !java.util.Arrays.equals(actual.shape(), expected.shape())) {
                throw mismatch(expected.file(), expected.name(), "the checkpoint has " + actual.dtype()
                    + actual.shapeText() + " but the current run expects " + expected.dtype()
                    + expected.shapeText());
            }
        }
        for (final CheckpointFile file : CheckpointFile.values()) {
            for (final Entry e : entries.get(file).values()) {
                if (layout.indexOf(file, e.spec().name()) < 0
                    && !e.spec().name().startsWith(CheckpointFormat.RANK_STATE_PREFIX)) {
                    throw mismatch(file, e.spec().name(), "the checkpoint has " + e.spec().dtype()
                        + e.spec().shapeText() + " but the current run has no such tensor");
                }
            }
        }
    }

    private CheckpointException mismatch(final CheckpointFile file, final String name, final String problem) {
        return new CheckpointException(directory, file.fileName(), name, problem,
            "the checkpoint was saved with a different model or optimizer configuration; resume with the "
                + "configuration stored in its 'config' attribute (moeflow inspect shows it)");
    }

    /** Reads a float32 tensor into {@code dst[offset ..]}, checking its checksum. */
    public void readFloat32(final CheckpointFile file, final String name, final float[] dst, final int offset) {
        readInto(file, name, DType.FLOAT32, dst, dst.length, offset);
    }

    /** Reads a float64 tensor into {@code dst[offset ..]}, checking its checksum. */
    public void readFloat64(final CheckpointFile file, final String name, final double[] dst, final int offset) {
        readInto(file, name, DType.FLOAT64, dst, dst.length, offset);
    }

    /** Reads an int64 tensor into {@code dst[offset ..]}, checking its checksum. */
    public void readInt64(final CheckpointFile file, final String name, final long[] dst, final int offset) {
        readInto(file, name, DType.INT64, dst, dst.length, offset);
    }

    /** Reads an int32 tensor into {@code dst[offset ..]}, checking its checksum. */
    public void readInt32(final CheckpointFile file, final String name, final int[] dst, final int offset) {
        readInto(file, name, DType.INT32, dst, dst.length, offset);
    }

    /** A float32 tensor as a new flat array (row-major), checksum checked. */
    public float[] float32(final CheckpointFile file, final String name) {
        final float[] out = new float[require(file, name, DType.FLOAT32).spec().elements()];
        readFloat32(file, name, out, 0);
        return out;
    }

    /** An int64 scalar (or one-element tensor), checksum checked. */
    public long int64(final CheckpointFile file, final String name) {
        final long[] out = new long[1];
        requireOneElement(file, name, DType.INT64);
        readInt64(file, name, out, 0);
        return out[0];
    }

    /** A float64 scalar (or one-element tensor), checksum checked. */
    public double float64(final CheckpointFile file, final String name) {
        final double[] out = new double[1];
        requireOneElement(file, name, DType.FLOAT64);
        readFloat64(file, name, out, 0);
        return out[0];
    }

    /**
     * Reads every dataset of both files and checks its checksum.
     *
     * @throws CheckpointException naming the first corrupt dataset
     */
    public void verify() {
        for (final CheckpointFile file : CheckpointFile.values()) {
            for (final Entry e : entries.get(file).values()) {
                scan(file, e, null, 0, false);
            }
        }
    }

    /** Every tensor of a file with its L2 norm, checksums checked; sorted by name. */
    public List<TensorStats> stats(final CheckpointFile file) {
        final List<TensorStats> out = new ArrayList<>();
        for (final Entry e : entries.get(file).values()) {
            final double sumOfSquares = scan(file, e, null, 0, true);
            out.add(new TensorStats(e.spec(), Math.sqrt(sumOfSquares)));
        }
        return out;
    }

    private Entry require(final CheckpointFile file, final String name, final DType dtype) {
        final Entry e = entries.get(file).get(name);
        if (e == null) {
            throw mismatch(file, name, "the checkpoint has no such tensor");
        }
        if (e.spec().dtype() != dtype) {
            throw mismatch(file, name, "the checkpoint stores it as " + e.spec().dtype() + e.spec().shapeText()
                + ", read as " + dtype);
        }
        return e;
    }

    private void requireOneElement(final CheckpointFile file, final String name, final DType dtype) {
        final Entry e = require(file, name, dtype);
        if (e.spec().elements() != 1) {
            throw mismatch(file, name, "the checkpoint stores " + e.spec().dtype() + e.spec().shapeText()
                + ", not a single value");
        }
    }

    private void readInto(final CheckpointFile file, final String name, final DType dtype, final Object dst,
        final int dstLength, final int offset) {
        final Entry e = require(file, name, dtype);
        final int n = e.spec().elements();
        if (offset < 0 || (long) offset + n > dstLength) {
            throw new IllegalArgumentException("tensor '" + name + "' has " + n + " elements; they do not fit "
                + "dst[" + offset + " ..] of length " + dstLength);
        }
        scan(file, e, dst, offset, false);
    }

    /**
     * Streams a dataset's bytes through the block buffer: checks the CRC, copies into {@code dst} when not null, and
     * returns the sum of squares of the elements when {@code norm} (else 0).
     */
    private double scan(final CheckpointFile file, final Entry e, final Object dst, final int offset,
        final boolean norm) {
        final DType dtype = e.spec().dtype();
        final int elementsPerBlock = BLOCK_BYTES / dtype.sizeBytes();
        final FileChannel channel = e.channel();
        crc.reset();
        double sumOfSquares = 0;
        final int total = e.spec().elements();
        for (int done = 0; done < total; ) {
            final int n = Math.min(elementsPerBlock, total - done);
            block.clear().limit(n * dtype.sizeBytes());
            final long at = e.address() + (long) done * dtype.sizeBytes();
            try {
                while (block.hasRemaining()) {
                    if (channel.read(block, at + block.position()) < 0) {
                        throw damaged(file.fileName(), e.spec().name(), "the file ends at byte "
                            + (at + block.position()) + " inside the dataset's data (truncated)");
                    }
                }
            } catch (final IOException ex) {
                throw CheckpointException.damagedData(directory, file.fileName(), e.spec().name(), "read failed: "
                    + ex, "check the disk; resume from another checkpoint if the file is damaged", ex);
            }
            block.flip();
            dataBytesRead += block.remaining();
            crc.update(block.duplicate());
            if (norm) {
                sumOfSquares += LittleEndian.sumOfSquares(dtype, block);
            }
            if (dst != null) {
                LittleEndian.get(dtype, block, dst, offset + done, n);
            }
            done += n;
        }
        if (crc.getValue() != e.crc32()) {
            throw damaged(file.fileName(), e.spec().name(), String.format("checksum mismatch: the data has "
                + "crc32=%08x but the stored checksum is %08x", crc.getValue(), e.crc32()));
        }
        return sumOfSquares;
    }

    private CheckpointException damaged(final String file, final String dataset, final String problem) {
        return CheckpointException.damagedData(directory, file, dataset, problem,
            "the checkpoint is corrupt or incomplete; resume from another one (--resume auto skips corrupt ones)",
            null);
    }

    private CheckpointException corrupt(final String file, final String dataset, final String problem) {
        return corrupt(file, dataset, problem, null);
    }

    private CheckpointException corrupt(final String file, final String dataset, final String problem,
        final Throwable cause) {
        return new CheckpointException(directory, file, dataset, problem,
            "the checkpoint is corrupt or incomplete; resume from another one (--resume auto skips corrupt ones)",
            cause);
    }

    /** Closes the data files. */
    @Override
    public void close() {
        for (final FileChannel channel : channels.values()) {
            try {
                channel.close();
            } catch (final IOException ignored) {
                // Read-only channel: nothing is lost if closing fails.
            }
        }
        channels.clear();
        for (final CheckpointReader part : parts) {
            part.close();
        }
        parts.clear();
    }
}
