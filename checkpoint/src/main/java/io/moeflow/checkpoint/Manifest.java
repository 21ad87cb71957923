package io.moeflow.checkpoint;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The last file written into a checkpoint directory before it is committed: the format version, the step, and the
 * size of every other file. A size that does not match reveals a truncated or partly copied file before an HDF5
 * parser sees it.
 *
 * <pre>
 * moeflow-checkpoint-manifest 1
 * step 400
 * file model.h5 9412345
 * file state.h5 18823456
 * </pre>
 *
 * @param version   the format version
 * @param step      the training step
 * @param fileSizes file name to size in bytes, in the order written
 */
record Manifest(long version, long step, Map<String, Long> fileSizes) {
    Manifest {
        fileSizes = java.util.Collections.unmodifiableMap(new LinkedHashMap<>(fileSizes));
    }

    /** The manifest text. */
    String toText() {
        final StringBuilder sb = new StringBuilder();
        sb.append(CheckpointFormat.MANIFEST_MAGIC).append(' ').append(version).append('\n');
        sb.append("step ").append(step).append('\n');
        fileSizes.forEach((name, size) -> sb.append("file ").append(name).append(' ').append(size).append('\n'));
        return sb.toString();
    }

    /**
     * Writes the manifest into {@code directory} (not synced: the commit fsyncs every file).
     *
     * @return the bytes written
     */
    long write(final Path directory) throws IOException {
        final byte[] text = toText().getBytes(StandardCharsets.UTF_8);
        Files.write(directory.resolve(CheckpointFormat.MANIFEST), text);
        return text.length;
    }

    /**
     * Reads and checks the manifest of a checkpoint directory.
     *
     * @throws CheckpointException when it is missing, malformed, or of a newer format version
     */
    static Manifest read(final Path directory) {
        final Path file = directory.resolve(CheckpointFormat.MANIFEST);
        if (!Files.isRegularFile(file)) {
            final boolean unfinished = CheckpointFormat.temporaryOwnerPid(directory.getFileName().toString())
                .isPresent();
            throw new CheckpointException(directory, CheckpointFormat.MANIFEST, null,
                unfinished ? "this is an unfinished save (no " + CheckpointFormat.MANIFEST + "); it was interrupted"
                    : "no " + CheckpointFormat.MANIFEST + ", so this is not a complete MoEFlow checkpoint",
                "resume from a committed step-NNNNNNNN directory, or use --resume auto");
        }
        final List<String> lines;
        try {
            lines = Files.readAllLines(file, StandardCharsets.UTF_8);
        } catch (final IOException | java.io.UncheckedIOException e) {
            throw new CheckpointException(directory, CheckpointFormat.MANIFEST, null, "cannot read it: " + e,
                "check the file's permissions, or resume from another checkpoint", e);
        }
        long version = -1;
        long step = -1;
        final Map<String, Long> sizes = new LinkedHashMap<>();
        for (int i = 0; i < lines.size(); i++) {
            final String line = lines.get(i).strip();
            if (line.isEmpty()) {
                continue;
            }
            final String[] words = line.split("\\s+");
            try {
                if (i == 0) {
                    if (words.length != 2 || !words[0].equals(CheckpointFormat.MANIFEST_MAGIC)) {
                        throw new IllegalArgumentException("first line must be '" + CheckpointFormat.MANIFEST_MAGIC
                            + " <version>'");
                    }
                    version = Long.parseLong(words[1]);
                    checkVersion(directory, CheckpointFormat.MANIFEST, version);
                } else if (words[0].equals("step") && words.length == 2) {
                    step = Long.parseLong(words[1]);
                } else if (words[0].equals("file") && words.length == 3) {
                    sizes.put(words[1], Long.parseLong(words[2]));
                } else {
                    throw new IllegalArgumentException("unexpected line");
                }
            } catch (final IllegalArgumentException e) {
                throw new CheckpointException(directory, CheckpointFormat.MANIFEST, null,
                    "line " + (i + 1) + " '" + line + "' is malformed: " + e.getMessage(),
                    "the manifest is corrupt; resume from another checkpoint (--resume auto skips corrupt ones)");
            }
        }
        if (version < 0 || step < 0 || sizes.isEmpty()) {
            throw new CheckpointException(directory, CheckpointFormat.MANIFEST, null,
                "incomplete: it needs the format line, a 'step' line and 'file' lines",
                "the manifest is corrupt; resume from another checkpoint (--resume auto skips corrupt ones)");
        }
        return new Manifest(version, step, sizes);
    }

    /** Rejects a format version this code cannot read, saying the highest it can. */
    static void checkVersion(final Path directory, final String file, final long version) {
        if (version < 1 || version > CheckpointFormat.VERSION) {
            throw new CheckpointException(directory, file, null,
                "written in checkpoint format version " + version + "; this MoEFlow supports at most version "
                    + CheckpointFormat.VERSION,
                version > CheckpointFormat.VERSION ? "load it with a newer MoEFlow"
                    : "the version is invalid; the file is corrupt");
        }
    }
}
