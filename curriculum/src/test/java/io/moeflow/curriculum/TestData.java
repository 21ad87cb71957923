package io.moeflow.curriculum;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/** Synthetic datasets whose text encodes each sample's difficulty, so tests can read it back from the tokens. */
final class TestData {
    private TestData() {
    }

    /** {@code n} samples with difficulty i/(n-1), text {@code "d0.1234 xx..."} of varying length. */
    static Dataset graded(final int n) {
        final List<Sample> samples = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            final double d = n == 1 ? 0 : i / (double) (n - 1);
            samples.add(new Sample(text(d, i % 7), d, i % 2 == 0 ? "even" : "odd"));
        }
        return Dataset.of("graded", samples);
    }

    static String text(final double difficulty, final int padding) {
        return String.format(Locale.ROOT, "d%.4f ", difficulty) + "x".repeat(padding);
    }

    /** Difficulties of every complete sample (one followed by its newline) in the packed rows. */
    static List<Double> completeSampleDifficulties(final int[] tokens, final int rows, final int rowLength) {
        final List<Double> out = new ArrayList<>();
        for (int r = 0; r < rows; r++) {
            int start = r * rowLength;
            for (int p = start; p < (r + 1) * rowLength; p++) {
                if (tokens[p] == '\n') {
                    out.add(parseDifficulty(tokens, start, p));
                    start = p + 1;
                }
            }
        }
        return out;
    }

    private static double parseDifficulty(final int[] tokens, final int from, final int to) {
        final byte[] b = new byte[to - from];
        for (int i = 0; i < b.length; i++) {
            b[i] = (byte) tokens[from + i];
        }
        final String s = new String(b, StandardCharsets.UTF_8);
        return Double.parseDouble(s.substring(1, s.indexOf(' ')));
    }
}
