package io.moeflow.launcher.launch;

import java.net.URLDecoder;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * One line of the rendezvous protocol: a verb and {@code key=value} fields, values URL-encoded so a
 * line never holds a space or a newline of its own, e.g. {@code EXIT gen=0 rank=1 code=137 reason=killed+by+SIGKILL}.
 * Text, so that a person can read a capture and another language could speak it.
 */
public record Message(String verb, Map<String, String> fields) {

    public Message {
        if (verb == null || !verb.matches("[A-Z]+")) {
            throw new IllegalArgumentException("verb=" + verb + ": must be upper-case letters");
        }
        fields = Collections.unmodifiableMap(new LinkedHashMap<>(fields));
    }

    /** A message from a verb and alternating keys and values (values via {@link String#valueOf}). */
    public static Message of(final String verb, final Object... keysAndValues) {
        if (keysAndValues.length % 2 != 0) {
            throw new IllegalArgumentException("keysAndValues: an odd count (" + keysAndValues.length + "); give key, value pairs");
        }
        final Map<String, String> fields = new LinkedHashMap<>();
        for (int i = 0; i < keysAndValues.length; i += 2) {
            fields.put(String.valueOf(keysAndValues[i]), String.valueOf(keysAndValues[i + 1]));
        }
        return new Message(verb, fields);
    }

    /** Parses a line written by {@link #toLine()}. */
    public static Message parse(final String line) {
        final String[] words = line.strip().split(" ");
        final Map<String, String> fields = new LinkedHashMap<>();
        for (int i = 1; i < words.length; i++) {
            final int eq = words[i].indexOf('=');
            if (eq <= 0) {
                throw new IllegalArgumentException("rendezvous message '" + abbreviate(line) + "': field '" + words[i]
                    + "' is not key=value");
            }
            fields.put(words[i].substring(0, eq), URLDecoder.decode(words[i].substring(eq + 1), StandardCharsets.UTF_8));
        }
        try {
            return new Message(words[0], fields);
        } catch (final IllegalArgumentException e) {
            throw new IllegalArgumentException("rendezvous message '" + abbreviate(line) + "': " + e.getMessage(), e);
        }
    }

    /** The line, without its newline. */
    public String toLine() {
        final StringBuilder s = new StringBuilder(verb);
        fields.forEach((k, v) -> s.append(' ').append(k).append('=').append(URLEncoder.encode(v, StandardCharsets.UTF_8)));
        return s.toString();
    }

    /** The field, which must be present. */
    public String get(final String key) {
        final String value = fields.get(key);
        if (value == null) {
            throw new IllegalArgumentException("rendezvous message " + verb + ": field '" + key + "' is missing");
        }
        return value;
    }

    /** The field, or {@code fallback} when absent. */
    public String get(final String key, final String fallback) {
        return fields.getOrDefault(key, fallback);
    }

    public int getInt(final String key) {
        try {
            return Integer.parseInt(get(key));
        } catch (final NumberFormatException e) {
            throw new IllegalArgumentException("rendezvous message " + verb + ": field '" + key + "' is not an integer", e);
        }
    }

    public long getLong(final String key) {
        try {
            return Long.parseLong(get(key));
        } catch (final NumberFormatException e) {
            throw new IllegalArgumentException("rendezvous message " + verb + ": field '" + key + "' is not an integer", e);
        }
    }

    public double getDouble(final String key) {
        try {
            return Double.parseDouble(get(key));
        } catch (final NumberFormatException e) {
            throw new IllegalArgumentException("rendezvous message " + verb + ": field '" + key + "' is not a number", e);
        }
    }

    /** Never shows secrets: fields named {@code key} or {@code token} are redacted. */
    @Override
    public String toString() {
        final Map<String, String> shown = new LinkedHashMap<>(fields);
        shown.replaceAll((k, v) -> k.equals("key") || k.equals("token") ? "[redacted]" : v);
        return verb + shown;
    }

    private static String abbreviate(final String line) {
        return line.length() <= 80 ? line : line.substring(0, 77) + "...";
    }
}
