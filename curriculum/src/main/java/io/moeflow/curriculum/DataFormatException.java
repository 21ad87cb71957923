package io.moeflow.curriculum;

import java.nio.file.Path;

/**
 * A data file that cannot be used: unreadable, empty, or a line that is malformed. The message names the file,
 * the 1-based line when there is one, what is wrong and what to do, e.g.
 * {@code data.jsonl:7: "difficulty"=1.5 is outside [0,1]; rescale difficulties to [0,1] (or pass --skip-bad-samples)}.
 */
public final class DataFormatException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    private final transient Path file;
    private final long line;

    /**
     * @param file    the data file
     * @param line    1-based line number, or 0 when the problem concerns the whole file
     * @param problem what is wrong
     * @param fix     what the user should do about it
     */
    public DataFormatException(final Path file, final long line, final String problem, final String fix) {
        super(file + (line > 0 ? ":" + line : "") + ": " + problem + "; " + fix);
        this.file = file;
        this.line = line;
    }

    /** The data file the problem is in. */
    public Path file() {
        return file;
    }

    /** The 1-based line of the problem, or 0 when it concerns the whole file. */
    public long line() {
        return line;
    }
}
