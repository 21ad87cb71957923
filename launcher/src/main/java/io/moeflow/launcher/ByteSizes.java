package io.moeflow.launcher;

import java.util.Locale;

/** Parses byte sizes written as {@code 8B}, {@code 64KiB}, {@code 64MiB}, {@code 1GiB} (also K, M, G and KB, MB, GB as binary units). */
final class ByteSizes {
    private ByteSizes() {
    }

    /** A size in bytes; {@code option} names the option in the error message. */
    static long parse(final String option, final String text) {
        final String t = text.trim().toUpperCase(Locale.ROOT);
        int end = 0;
        while (end < t.length() && Character.isDigit(t.charAt(end))) {
            end++;
        }
        final String unit = t.substring(end).replace("IB", "").replace("B", "");
        if (end == 0 || !(unit.isEmpty() || unit.equals("K") || unit.equals("M") || unit.equals("G"))) {
            throw new IllegalArgumentException(option + ": '" + text + "' is not a size; write e.g. 8B, 64KiB, 64MiB or 1GiB");
        }
        final long value = Long.parseLong(t.substring(0, end));
        final int shift = unit.isEmpty() ? 0 : unit.equals("K") ? 10 : unit.equals("M") ? 20 : 30;
        if (value > (Long.MAX_VALUE >> shift)) {
            throw new IllegalArgumentException(option + ": '" + text + "' is too large");
        }
        return value << shift;
    }

    /** A range {@code MIN..MAX}, e.g. {@code 8B..64MiB}; a single size is a range of one. */
    static long[] parseRange(final String option, final String text) {
        final int dots = text.indexOf("..");
        if (dots < 0) {
            final long size = parse(option, text);
            return new long[] {size, size};
        }
        return new long[] {parse(option, text.substring(0, dots)), parse(option, text.substring(dots + 2))};
    }
}
