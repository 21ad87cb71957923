package io.moeflow.checkpoint;

import io.jhdf.HdfFile;
import io.jhdf.WritableHdfFile;
import io.jhdf.api.WritableDataset;
import io.jhdf.api.WritableGroup;

import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/** Writes one checkpoint file (model.h5 or state.h5) from the staging arrays with jHDF. */
final class JhdfFileWriter {
    private JhdfFileWriter() {
    }

    /**
     * Writes the tensors of {@code file} with their checksums as dataset attributes and {@code rootAttributes} on the
     * root group. jHDF writes everything when the file is closed, at the end of this method.
     *
     * @param path           the file to create; it must not exist (jHDF does not truncate)
     * @param coalesceBuffer direct buffer for {@link CoalescingFileChannel}, or null to let jHDF write directly
     *                       (kept only so the benchmark can show the difference)
     */
    static void write(final Path path, final CheckpointFile file, final Staging staging, final long[] crc32,
        final Map<String, Object> rootAttributes, final ByteBuffer coalesceBuffer) {
        final Path target = coalesceBuffer == null ? path : CoalescingPath.of(path, coalesceBuffer);
        try (WritableHdfFile hdf = HdfFile.write(target)) {
            rootAttributes.forEach(hdf::putAttribute);
            final Map<String, WritableGroup> groups = new HashMap<>();
            final List<TensorSpec> tensors = staging.layout.tensors();
            for (int i = 0; i < tensors.size(); i++) {
                final TensorSpec t = tensors.get(i);
                if (t.file() != file) {
                    continue;
                }
                final int slash = t.name().lastIndexOf('/');
                final WritableGroup parent = slash < 0 ? hdf : group(hdf, groups, t.name().substring(0, slash));
                final WritableDataset dataset = parent.putDataset(t.name().substring(slash + 1),
                    staging.datasetValue(i));
                dataset.putAttribute(CheckpointFormat.ATTR_CRC32, crc32[i]);
            }
        }
    }

    /** The group at {@code path} ({@code a/b/c}), creating it and its parents once. */
    private static WritableGroup group(final WritableHdfFile root, final Map<String, WritableGroup> groups,
        final String path) {
        final WritableGroup known = groups.get(path);
        if (known != null) {
            return known;
        }
        final int slash = path.lastIndexOf('/');
        final WritableGroup parent = slash < 0 ? root : group(root, groups, path.substring(0, slash));
        final WritableGroup created = parent.putGroup(path.substring(slash + 1));
        groups.put(path, created);
        return created;
    }
}
