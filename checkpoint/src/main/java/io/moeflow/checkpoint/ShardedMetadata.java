package io.moeflow.checkpoint;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * The global metadata of a sharded checkpoint ({@code metadata.txt}), written last by rank 0 after every rank has
 * written and synced its part ({@code rank-NNNNN/}, a plain checkpoint directory of the tensors that rank wrote). A
 * sharded checkpoint without it is incomplete. The module does not know what the properties mean: the trainer records
 * its job shape there (expert-parallel degree, which rank owns which expert).
 *
 * <pre>
 * moeflow-sharded-checkpoint 1
 * step 400
 * world_size 4
 * property expert_parallel 4
 * property expert_owners 0:0 1:0 2:1 3:1 4:2 5:2 6:3 7:3
 * tensor model.h5 0 wte.weight
 * tensor state.h5 1 optimizer/exp_avg/blocks.0.moe.experts.2.w1.weight
 * </pre>
 *
 * @param version    the metadata version ({@link CheckpointFormat#SHARDED_VERSION})
 * @param step       the training step
 * @param worldSize  ranks that wrote a part
 * @param properties job properties, in the order written
 * @param tensors    {@code "<file> <name>"} to the rank whose part holds it, sorted
 */
public record ShardedMetadata(long version, long step, int worldSize, Map<String, String> properties,
    Map<String, Integer> tensors) {
    /** Copies the maps. */
    public ShardedMetadata {
        properties = Collections.unmodifiableMap(new LinkedHashMap<>(properties));
        tensors = Collections.unmodifiableMap(new TreeMap<>(tensors));
    }

    /** The text of the file. */
    String toText() {
        final StringBuilder sb = new StringBuilder();
        sb.append(CheckpointFormat.SHARDED_MAGIC).append(' ').append(version).append('\n');
        sb.append("step ").append(step).append('\n');
        sb.append("world_size ").append(worldSize).append('\n');
        properties.forEach((k, v) -> sb.append("property ").append(k).append(' ').append(v).append('\n'));
        tensors.forEach((key, rank) -> {
            final int space = key.indexOf(' ');
            sb.append("tensor ").append(key, 0, space).append(' ').append(rank).append(' ')
                .append(key.substring(space + 1)).append('\n');
        });
        return sb.toString();
    }

    /** Reads and checks the metadata of a sharded checkpoint directory. */
    static ShardedMetadata read(final Path directory) {
        final Path file = directory.resolve(CheckpointFormat.SHARDED_METADATA);
        final List<String> lines;
        try {
            lines = Files.readAllLines(file, StandardCharsets.UTF_8);
        } catch (final IOException | java.io.UncheckedIOException e) {
            throw new CheckpointException(directory, CheckpointFormat.SHARDED_METADATA, null, "cannot read it: " + e,
                "check the file's permissions, or resume from another checkpoint", e);
        }
        long version = -1;
        long step = -1;
        int worldSize = -1;
        final Map<String, String> properties = new LinkedHashMap<>();
        final Map<String, Integer> tensors = new TreeMap<>();
        for (int i = 0; i < lines.size(); i++) {
            final String line = lines.get(i);
            if (line.isBlank()) {
                continue;
            }
            final String[] words = line.split(" ", 4);
            try {
                if (i == 0) {
                    if (words.length != 2 || !words[0].equals(CheckpointFormat.SHARDED_MAGIC)) {
                        throw new IllegalArgumentException("first line must be '" + CheckpointFormat.SHARDED_MAGIC
                            + " <version>'");
                    }
                    version = Long.parseLong(words[1]);
                    if (version < 1 || version > CheckpointFormat.SHARDED_VERSION) {
                        throw new CheckpointException(directory, CheckpointFormat.SHARDED_METADATA, null,
                            "written in sharded metadata version " + version + "; this MoEFlow reads at most "
                                + CheckpointFormat.SHARDED_VERSION, "load it with a newer MoEFlow");
                    }
                } else if (words[0].equals("step") && words.length == 2) {
                    step = Long.parseLong(words[1]);
                } else if (words[0].equals("world_size") && words.length == 2) {
                    worldSize = Integer.parseInt(words[1]);
                } else if (words[0].equals("property") && words.length >= 3) {
                    properties.put(words[1], line.substring(("property " + words[1] + " ").length()));
                } else if (words[0].equals("tensor") && words.length == 4) {
                    final int rank = Integer.parseInt(words[2]);
                    if (rank < 0 || worldSize < 0 || rank >= worldSize) {
                        throw new IllegalArgumentException("rank " + rank + " outside the world size " + worldSize);
                    }
                    if (tensors.put(words[1] + " " + words[3], rank) != null) {
                        throw new IllegalArgumentException("tensor listed twice");
                    }
                } else {
                    throw new IllegalArgumentException("unexpected line");
                }
            } catch (final IllegalArgumentException e) {
                throw new CheckpointException(directory, CheckpointFormat.SHARDED_METADATA, null,
                    "line " + (i + 1) + " '" + line + "' is malformed: " + e.getMessage(),
                    "the metadata is corrupt; resume from another checkpoint (--resume auto skips corrupt ones)");
            }
        }
        if (version < 0 || step < 0 || worldSize < 1 || tensors.isEmpty()) {
            throw new CheckpointException(directory, CheckpointFormat.SHARDED_METADATA, null,
                "incomplete: it needs the format line, 'step', 'world_size' and 'tensor' lines",
                "the metadata is corrupt; resume from another checkpoint (--resume auto skips corrupt ones)");
        }
        return new ShardedMetadata(version, step, worldSize, properties, tensors);
    }
}
