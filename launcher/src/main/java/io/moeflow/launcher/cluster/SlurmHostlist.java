package io.moeflow.launcher.cluster;

import java.util.ArrayList;
import java.util.List;

/**
 * Expands a Slurm hostlist expression ({@code SLURM_JOB_NODELIST}) into host names, in order, as
 * {@code scontrol show hostnames} does: {@code node[01-03,7],gpu5} is node01, node02, node03, node7, gpu5.
 * A range keeps the zero padding of its first number; several bracket groups in one name expand in order
 * ({@code r[1-2]n[1-2]} is r1n1, r1n2, r2n1, r2n2).
 */
public final class SlurmHostlist {
    /** More hosts than any job has: guards against a typo like {@code n[1-99999999]}. */
    private static final int MAX_HOSTS = 1 << 20;

    private SlurmHostlist() {
    }

    /**
     * The hosts of a hostlist expression.
     *
     * @throws IllegalArgumentException naming the expression when it is malformed
     */
    public static List<String> expand(final String expression) {
        final List<String> hosts = new ArrayList<>();
        for (final String part : splitTopLevel(expression)) {
            if (part.isEmpty()) {
                throw bad(expression, "an empty host name");
            }
            expandInto(expression, "", part, hosts);
        }
        if (hosts.isEmpty()) {
            throw bad(expression, "no hosts");
        }
        return hosts;
    }

    /** Splits at commas outside brackets. */
    private static List<String> splitTopLevel(final String expression) {
        final List<String> parts = new ArrayList<>();
        int depth = 0;
        int start = 0;
        for (int i = 0; i < expression.length(); i++) {
            final char c = expression.charAt(i);
            if (c == '[') {
                depth++;
                if (depth > 1) {
                    throw bad(expression, "nested brackets");
                }
            } else if (c == ']') {
                depth--;
                if (depth < 0) {
                    throw bad(expression, "']' without '['");
                }
            } else if (c == ',' && depth == 0) {
                parts.add(expression.substring(start, i).strip());
                start = i + 1;
            }
        }
        if (depth != 0) {
            throw bad(expression, "'[' without ']'");
        }
        parts.add(expression.substring(start).strip());
        return parts;
    }

    /** Appends prefix + every expansion of rest. */
    private static void expandInto(final String expression, final String prefix, final String rest, final List<String> hosts) {
        final int open = rest.indexOf('[');
        if (open < 0) {
            if (hosts.size() >= MAX_HOSTS) {
                throw bad(expression, "more than " + MAX_HOSTS + " hosts");
            }
            hosts.add(prefix + rest);
            return;
        }
        final int close = rest.indexOf(']', open);
        final String head = prefix + rest.substring(0, open);
        final String tail = rest.substring(close + 1);
        final String ranges = rest.substring(open + 1, close);
        if (ranges.isEmpty()) {
            throw bad(expression, "empty brackets");
        }
        for (final String range : ranges.split(",", -1)) {
            final String[] ends = range.strip().split("-", -1);
            if (ends.length > 2 || !isDigits(ends[0]) || (ends.length == 2 && !isDigits(ends[1]))) {
                throw bad(expression, "'" + range + "' is not a number or a range like 01-03");
            }
            final long low = Long.parseLong(ends[0]);
            final long high = ends.length == 2 ? Long.parseLong(ends[1]) : low;
            if (high < low) {
                throw bad(expression, "the range " + range + " runs backwards");
            }
            if (high - low >= MAX_HOSTS) {
                throw bad(expression, "more than " + MAX_HOSTS + " hosts");
            }
            final int width = ends[0].length();
            for (long n = low; n <= high; n++) {
                final String digits = Long.toString(n);
                expandInto(expression, head + "0".repeat(Math.max(0, width - digits.length())) + digits, tail, hosts);
            }
        }
    }

    private static boolean isDigits(final String s) {
        if (s.isEmpty() || s.length() > 18) {
            return false;
        }
        for (int i = 0; i < s.length(); i++) {
            if (s.charAt(i) < '0' || s.charAt(i) > '9') {
                return false;
            }
        }
        return true;
    }

    private static IllegalArgumentException bad(final String expression, final String what) {
        return new IllegalArgumentException("SLURM_JOB_NODELIST '" + expression + "': " + what
            + "; expected a Slurm hostlist like node[01-03,7],gpu5");
    }
}
