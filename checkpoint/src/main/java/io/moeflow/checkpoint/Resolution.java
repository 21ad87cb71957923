package io.moeflow.checkpoint;

import java.nio.file.Path;
import java.util.List;

/**
 * The checkpoint a resume will load, and what was skipped on the way.
 *
 * @param directory the validated checkpoint directory
 * @param step      its step
 * @param warnings  one line per newer checkpoint that was skipped because it did not validate, with the reason; the
 *                  caller prints them (the module never prints)
 */
public record Resolution(Path directory, long step, List<String> warnings) {
    /** Copies the warnings. */
    public Resolution {
        warnings = List.copyOf(warnings);
    }
}
