package io.moeflow.checkpoint;

import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The tensors a run saves, in declaration order. The trainer builds it once from its model and optimizer; the writer
 * preallocates its staging buffers from it, and a reader checks a checkpoint against it before loading, so a resume
 * with a different model names the first tensor that does not match.
 */
public final class CheckpointLayout {
    private final List<TensorSpec> tensors;
    private final Map<CheckpointFile, Map<String, Integer>> indexByFile;

    private CheckpointLayout(final List<TensorSpec> tensors) {
        this.tensors = List.copyOf(tensors);
        final Map<CheckpointFile, Map<String, Integer>> index = new HashMap<>();
        final Map<CheckpointFile, Set<String>> groups = new HashMap<>();
        for (int i = 0; i < this.tensors.size(); i++) {
            final TensorSpec t = this.tensors.get(i);
            final Map<String, Integer> names = index.computeIfAbsent(t.file(), f -> new HashMap<>());
            if (names.putIfAbsent(t.name(), i) != null) {
                throw new IllegalArgumentException("tensor '" + t.name() + "' is declared twice in "
                    + t.file().fileName());
            }
            final Set<String> groupNames = groups.computeIfAbsent(t.file(), f -> new HashSet<>());
            for (int slash = t.name().indexOf('/'); slash >= 0; slash = t.name().indexOf('/', slash + 1)) {
                groupNames.add(t.name().substring(0, slash));
            }
        }
        for (final Map.Entry<CheckpointFile, Set<String>> e : groups.entrySet()) {
            for (final String group : e.getValue()) {
                if (index.get(e.getKey()).containsKey(group)) {
                    throw new IllegalArgumentException("'" + group + "' in " + e.getKey().fileName()
                        + " is both a tensor and a group of other tensors; rename one of them");
                }
            }
        }
        final Map<CheckpointFile, Map<String, Integer>> frozen = new HashMap<>();
        index.forEach((file, names) -> frozen.put(file, Map.copyOf(names)));
        this.indexByFile = Collections.unmodifiableMap(frozen);
    }

    /** A builder that keeps the order of declaration. */
    public static Builder builder() {
        return new Builder();
    }

    /** Every tensor, in declaration order. */
    public List<TensorSpec> tensors() {
        return tensors;
    }

    /** Number of tensors. */
    public int size() {
        return tensors.size();
    }

    /** Position of a tensor in {@link #tensors()}, or -1 when the layout has no such tensor. */
    public int indexOf(final CheckpointFile file, final String name) {
        final Map<String, Integer> names = indexByFile.get(file);
        final Integer i = names == null ? null : names.get(name);
        return i == null ? -1 : i;
    }

    /** Total raw data bytes over all tensors (what a checkpoint writes, before HDF5 metadata). */
    public long totalBytes() {
        long bytes = 0;
        for (final TensorSpec t : tensors) {
            bytes += t.sizeBytes();
        }
        return bytes;
    }

    /** Collects tensor declarations; {@link #build()} checks names are unique per file. */
    public static final class Builder {
        private final List<TensorSpec> tensors = new ArrayList<>();

        private Builder() {
        }

        /** Adds a tensor. */
        public Builder add(final TensorSpec tensor) {
            tensors.add(tensor);
            return this;
        }

        /** Adds a float32 tensor. */
        public Builder float32(final CheckpointFile file, final String name, final long... shape) {
            return add(TensorSpec.float32(file, name, shape));
        }

        /** Adds a float64 tensor (no dimensions: a scalar). */
        public Builder float64(final CheckpointFile file, final String name, final long... shape) {
            return add(TensorSpec.float64(file, name, shape));
        }

        /** Adds an int64 tensor (no dimensions: a scalar). */
        public Builder int64(final CheckpointFile file, final String name, final long... shape) {
            return add(TensorSpec.int64(file, name, shape));
        }

        /** Adds an int32 tensor (no dimensions: a scalar). */
        public Builder int32(final CheckpointFile file, final String name, final long... shape) {
            return add(TensorSpec.int32(file, name, shape));
        }

        /** The layout; throws {@link IllegalArgumentException} on a duplicate name or a name clash with a group. */
        public CheckpointLayout build() {
            if (tensors.isEmpty()) {
                throw new IllegalArgumentException("a checkpoint layout needs at least one tensor");
            }
            return new CheckpointLayout(tensors);
        }
    }
}
