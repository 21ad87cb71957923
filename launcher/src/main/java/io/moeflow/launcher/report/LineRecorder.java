package io.moeflow.launcher.report;

import java.io.PrintStream;
import java.util.ArrayList;
import java.util.List;

/** A {@link PrintStream} that prints lines to another stream and keeps them, for a chart drawn afterwards. */
public final class LineRecorder extends PrintStream {
    private final PrintStream target;
    private final List<String> lines = new ArrayList<>();

    public LineRecorder(final PrintStream target) {
        super(target, true);
        this.target = target;
    }

    @Override
    public void println(final String line) {
        synchronized (lines) {
            lines.add(String.valueOf(line));
        }
        target.println(line);
    }

    /** The lines printed so far. */
    public List<String> lines() {
        synchronized (lines) {
            return List.copyOf(lines);
        }
    }
}
