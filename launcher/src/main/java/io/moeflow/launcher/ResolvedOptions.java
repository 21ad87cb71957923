package io.moeflow.launcher;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.stream.Collectors;

import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Model.OptionSpec;

/**
 * The resolved value of every option of a command (command line, then --config file, then
 * default), as {@code key=value} lines whose keys are the option names without dashes: the file
 * written to {@code runs/<name>/config.properties} can be passed back with {@code --config}.
 */
final class ResolvedOptions {
    private ResolvedOptions() {
    }

    static Map<String, String> of(final CommandSpec spec) {
        final Map<String, String> values = new LinkedHashMap<>();
        for (final OptionSpec o : spec.options()) {
            final String key = o.longestName().replaceFirst("^-+", "");
            if (o.usageHelp() || o.versionHelp() || key.equals("config") || o.hidden()) {
                continue;
            }
            final Object v = o.getValue();
            if (v == null) {
                continue; // unset optional: its default is derived elsewhere (and "" would not parse back)
            }
            values.put(key, v instanceof Collection<?> c
                ? c.stream().map(String::valueOf).collect(Collectors.joining(",")) : String.valueOf(v));
        }
        return values;
    }

    /** The values as the text of a properties file (keys in declaration order, values escaped). */
    static String text(final Map<String, String> values, final String header) {
        final StringBuilder text = new StringBuilder("# " + header + "\n");
        for (final Map.Entry<String, String> e : values.entrySet()) {
            text.append(e.getKey()).append('=').append(escape(e.getValue())).append('\n');
        }
        return text.toString();
    }

    static void write(final String text, final Path file) {
        try {
            Files.writeString(file, text, StandardCharsets.UTF_8);
        } catch (final IOException e) {
            throw new UncheckedIOException("cannot write " + file + ": " + e.getMessage(), e);
        }
    }

    /** The same lines, for printing at start. */
    static String format(final Map<String, String> values) {
        final int width = values.keySet().stream().mapToInt(String::length).max().orElse(0);
        final StringBuilder s = new StringBuilder();
        for (final Map.Entry<String, String> e : values.entrySet()) {
            s.append("  ").append(String.format("%-" + width + "s", e.getKey())).append(" = ").append(e.getValue())
                .append('\n');
        }
        return s.toString();
    }

    private static String escape(final String v) {
        final StringBuilder s = new StringBuilder();
        for (final char c : v.toCharArray()) {
            switch (c) {
                case '\\' -> s.append("\\\\");
                case '\n' -> s.append("\\n");
                case '=', ':', '#', '!' -> s.append('\\').append(c);
                default -> s.append(c);
            }
        }
        return s.toString();
    }
}
