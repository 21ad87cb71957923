package io.moeflow.checkpoint;

import java.util.OptionalLong;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The names and numbers that define the on-disk format (documented in {@code docs/checkpoint-format.md}). Change
 * {@link #VERSION} whenever a reader of the old version could misread a new file.
 */
public final class CheckpointFormat {
    /** Value of the {@link #ATTR_FORMAT} root attribute of both files. */
    public static final String MAGIC = "moeflow-checkpoint";

    /** The format version this code writes; it reads versions 1 up to this one. */
    public static final long VERSION = 1;

    /** Root attribute: the format magic ({@link #MAGIC}). */
    public static final String ATTR_FORMAT = "moeflow_format";
    /** Root attribute: the format version (int64). */
    public static final String ATTR_VERSION = "format_version";
    /** Root attribute: {@code "model"} or {@code "state"}. */
    public static final String ATTR_KIND = "kind";
    /** Root attribute: the training step (int64). */
    public static final String ATTR_STEP = "step";
    /** Root attribute: the resolved configuration as text. */
    public static final String ATTR_CONFIG = "config";
    /** Root attribute: the MoEFlow version. */
    public static final String ATTR_PROJECT_VERSION = "moeflow_version";
    /** Root attribute: the git commit, or {@code unknown}. */
    public static final String ATTR_GIT_COMMIT = "git_commit";
    /** Root attribute: the Java runtime version. */
    public static final String ATTR_JAVA_VERSION = "java_version";
    /** Root attribute: the save time, ISO-8601 UTC. */
    public static final String ATTR_CREATED_UTC = "created_utc";
    /** Root attribute: the number of ranks (int64). */
    public static final String ATTR_WORLD_SIZE = "world_size";
    /** Dataset attribute: CRC-32 (zlib) of the dataset's raw little-endian bytes (int64, 0 to 2^32-1). */
    public static final String ATTR_CRC32 = "crc32";
    /** Root attribute jHDF adds to every file it writes. */
    public static final String ATTR_JHDF = "_jHDF";

    /** Every root attribute name the format defines (extra run attributes must not use them). */
    public static final Set<String> STANDARD_ATTRIBUTES = Set.of(ATTR_FORMAT, ATTR_VERSION, ATTR_KIND, ATTR_STEP,
        ATTR_CONFIG, ATTR_PROJECT_VERSION, ATTR_GIT_COMMIT, ATTR_JAVA_VERSION, ATTR_CREATED_UTC, ATTR_WORLD_SIZE,
        ATTR_JHDF);

    /** The manifest file of a checkpoint directory: format line, step, then each file with its size. */
    public static final String MANIFEST = "manifest.txt";
    /** First word of the manifest's first line. */
    public static final String MANIFEST_MAGIC = "moeflow-checkpoint-manifest";
    /**
     * The global metadata of a sharded checkpoint, written last by rank 0 once every rank has written and synced its
     * part: world size, job properties (expert-parallel degree, expert owners), and which part holds each tensor.
     */
    public static final String SHARDED_METADATA = "metadata.txt";
    /** First word of the sharded metadata's first line. */
    public static final String SHARDED_MAGIC = "moeflow-sharded-checkpoint";
    /** Version of the sharded metadata this code writes and reads. */
    public static final long SHARDED_VERSION = 1;
    /**
     * Tensors under this prefix of state.h5 are one rank's own state ({@code ranks/<k>/...}); a reader of another
     * world size ignores them, and {@link CheckpointReader#checkLayout} allows them beside the layout.
     */
    public static final String RANK_STATE_PREFIX = "ranks/";

    /** The pointer file in the checkpoints directory naming the newest committed checkpoint. */
    public static final String LATEST = "latest";

    private static final Pattern COMMITTED = Pattern.compile("step-(\\d{8,18})");
    private static final Pattern TEMPORARY = Pattern.compile("step-\\d{8,18}\\.(tmp|deleting)-(\\d+)");
    private static final Pattern REPLACED = Pattern.compile("step-(\\d{8,18})\\.replaced-(\\d+)");

    /** The lock file a writer holds for its whole life, so that two writers never share a checkpoints directory. */
    public static final String WRITER_LOCK = "writer.lock";

    private CheckpointFormat() {
    }

    /** The committed directory name of a step: {@code step-00000400} (at least 8 digits). */
    public static String directoryName(final long step) {
        if (step < 0) {
            throw new IllegalArgumentException("step=" + step + " must be >= 0");
        }
        return String.format("step-%08d", step);
    }

    /** The directory of rank {@code rank}'s part inside a sharded checkpoint: {@code rank-00003}. */
    public static String shardName(final int rank) {
        if (rank < 0) {
            throw new IllegalArgumentException("rank=" + rank + " must be >= 0");
        }
        return String.format("rank-%05d", rank);
    }

    /** The lock file of rank {@code rank}'s writer: {@link #WRITER_LOCK} for rank 0 (and one process). */
    static String writerLock(final int rank) {
        return rank == 0 ? WRITER_LOCK : WRITER_LOCK + ".rank-" + rank;
    }

    /** The step of a committed directory name, or empty when the name is not one. */
    public static OptionalLong parseStep(final String directoryName) {
        final Matcher m = COMMITTED.matcher(directoryName);
        return m.matches() ? OptionalLong.of(Long.parseLong(m.group(1))) : OptionalLong.empty();
    }

    /** The temporary name a save writes under: {@code step-00000400.tmp-<pid>}. */
    static String temporaryName(final long step, final long pid) {
        return directoryName(step) + ".tmp-" + pid;
    }

    /** The name a checkpoint is renamed to before it is deleted: {@code step-00000400.deleting-<pid>}. */
    static String deletingName(final long step, final long pid) {
        return directoryName(step) + ".deleting-" + pid;
    }

    /**
     * The name a committed checkpoint is moved aside to while a second save of the same step replaces it:
     * {@code step-00000400.replaced-<pid>}. It is complete (moved in one rename), so while no {@code step-00000400}
     * exists it is that step's checkpoint: resolution reads it and the next writer renames it back.
     */
    static String replacedName(final long step, final long pid) {
        return directoryName(step) + ".replaced-" + pid;
    }

    /** The step of a {@link #replacedName} directory, or empty when the name is not one. */
    static OptionalLong parseReplacedStep(final String directoryName) {
        final Matcher m = REPLACED.matcher(directoryName);
        return m.matches() ? OptionalLong.of(Long.parseLong(m.group(1))) : OptionalLong.empty();
    }

    /** The pid in a temporary or deleting directory name, or empty when the name is neither. */
    static OptionalLong temporaryOwnerPid(final String directoryName) {
        final Matcher m = TEMPORARY.matcher(directoryName);
        return m.matches() ? OptionalLong.of(Long.parseLong(m.group(2))) : OptionalLong.empty();
    }
}
