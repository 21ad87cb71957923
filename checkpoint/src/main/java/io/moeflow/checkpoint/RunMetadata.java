package io.moeflow.checkpoint;

import java.util.Map;
import java.util.Objects;
import java.util.TreeMap;

/**
 * What a run records about itself in every checkpoint, as root attributes of both files: the resolved configuration
 * and provenance. The save time and step are added per save.
 *
 * @param config         the full resolved configuration as text (whatever the launcher prints at start)
 * @param projectVersion the MoEFlow version that wrote the checkpoint
 * @param gitCommit      the source commit when known, else {@link #UNKNOWN}
 * @param javaVersion    the Java runtime version, e.g. {@code 17.0.15}
 * @param worldSize      number of ranks in the run, {@code >= 1}
 * @param extra          further string attributes (sorted by name); names must not clash with the standard ones
 */
public record RunMetadata(
    String config, String projectVersion, String gitCommit, String javaVersion, int worldSize, Map<String, String> extra) {
    /** The value stored when a provenance field is not known. */
    public static final String UNKNOWN = "unknown";

    /**
     * Largest UTF-8 size of one string attribute: HDF5 keeps attributes inside the object header, whose messages are
     * limited to 64 KiB, and jHDF 0.13.0 cannot write the "dense" attribute storage for larger ones (a 60,000-byte
     * attribute already made a file that neither jHDF nor h5dump could read back). 56 KiB leaves a margin.
     */
    public static final int MAX_ATTRIBUTE_BYTES = 56 * 1024;

    /** Validates and copies {@code extra}. */
    public RunMetadata {
        Objects.requireNonNull(config, "config");
        requireFits("config", config);
        requireText("projectVersion", projectVersion);
        requireText("gitCommit", gitCommit);
        requireText("javaVersion", javaVersion);
        if (worldSize < 1) {
            throw new IllegalArgumentException("worldSize=" + worldSize + " must be >= 1");
        }
        extra = Map.copyOf(extra);
        for (final Map.Entry<String, String> e : new TreeMap<>(extra).entrySet()) {
            if (CheckpointFormat.STANDARD_ATTRIBUTES.contains(e.getKey())) {
                throw new IllegalArgumentException("extra attribute '" + e.getKey() + "' clashes with a standard "
                    + "checkpoint attribute; standard ones are " + CheckpointFormat.STANDARD_ATTRIBUTES);
            }
            if (e.getKey().isEmpty()) {
                throw new IllegalArgumentException("extra attribute names must be non-empty");
            }
            requireFits("extra attribute '" + e.getKey() + "'", e.getValue());
        }
    }

    /**
     * Metadata for this JVM: its Java version, the given project version and commit (or {@link #UNKNOWN}), no extra
     * attributes.
     */
    public static RunMetadata of(final String config, final String projectVersion, final String gitCommit,
        final int worldSize) {
        return new RunMetadata(config, projectVersion, gitCommit == null || gitCommit.isBlank() ? UNKNOWN : gitCommit,
            Runtime.version().toString(), worldSize, Map.of());
    }

    static void requireFits(final String name, final String value) {
        java.util.Objects.requireNonNull(value, name);
        final int bytes = value.getBytes(java.nio.charset.StandardCharsets.UTF_8).length;
        if (bytes > MAX_ATTRIBUTE_BYTES) {
            throw new IllegalArgumentException(name + " is " + bytes + " bytes of UTF-8; an HDF5 attribute written by "
                + "jHDF holds at most " + MAX_ATTRIBUTE_BYTES + " bytes, shorten it");
        }
    }

    private static void requireText(final String name, final String value) {
        if (value == null || value.isBlank()) {
            throw new IllegalArgumentException(name + "=" + value + " must be a non-blank string (use '"
                + UNKNOWN + "' when not known)");
        }
    }
}
