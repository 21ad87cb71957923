package io.moeflow.curriculum;

import java.util.Objects;

/**
 * One training sample: text (UTF-8 bytes are the model's tokens), a difficulty in [0,1] (0 = easiest), a domain
 * name used for per-domain evaluation, and optionally where a checkable answer starts.
 *
 * @param text        the sample, non-empty; a {@link Dataset} stores it with a trailing {@code '\n'} (added when
 *                    missing), because packed rows separate samples with newlines
 * @param difficulty  in [0,1], the key the curriculum orders and filters by
 * @param domain      non-empty name, e.g. {@code "arith"}
 * @param answerStart char index in {@code text} where a checkable answer begins, or -1 if the sample has none;
 *                    the answer runs to the first {@code '\n'} after it, or to the end of the text
 */
public record Sample(String text, double difficulty, String domain, int answerStart) {

    /** Validates every field; messages name the field and its value. */
    public Sample {
        Objects.requireNonNull(text, "text");
        Objects.requireNonNull(domain, "domain");
        if (text.isEmpty()) {
            throw new IllegalArgumentException("text is empty; a sample needs at least one character");
        }
        if (!(difficulty >= 0.0 && difficulty <= 1.0)) {
            throw new IllegalArgumentException("difficulty=" + difficulty + " is outside [0,1]");
        }
        if (domain.isEmpty()) {
            throw new IllegalArgumentException("domain is empty; name the sample's domain, e.g. \"code\"");
        }
        if (answerStart < -1 || answerStart >= text.length()) {
            throw new IllegalArgumentException("answerStart=" + answerStart
                    + " must be -1 (no answer) or an index into the text (length " + text.length() + ")");
        }
        final int badSurrogate = unpairedSurrogate(text);
        if (badSurrogate >= 0) {
            throw new IllegalArgumentException("text has an unpaired UTF-16 surrogate at index " + badSurrogate
                    + " that UTF-8 cannot encode");
        }
        if (answerStart > 0 && Character.isLowSurrogate(text.charAt(answerStart))) {
            throw new IllegalArgumentException("answerStart=" + answerStart + " splits a surrogate pair");
        }
    }

    /** A sample without a checkable answer (loss only). */
    public Sample(final String text, final double difficulty, final String domain) {
        this(text, difficulty, domain, -1);
    }

    /** Whether the sample carries a checkable answer. */
    public boolean hasAnswer() {
        return answerStart >= 0;
    }

    /** The text before the answer (the prompt to generate from); the whole text when there is no answer. */
    public String prompt() {
        return hasAnswer() ? text.substring(0, answerStart) : text;
    }

    /** The expected answer without its newline; empty when there is no answer. */
    public String answer() {
        if (!hasAnswer()) {
            return "";
        }
        final int newline = text.indexOf('\n', answerStart);
        return text.substring(answerStart, newline < 0 ? text.length() : newline);
    }

    private static int unpairedSurrogate(final String s) {
        for (int i = 0; i < s.length(); i++) {
            final char c = s.charAt(i);
            if (Character.isHighSurrogate(c)) {
                if (i + 1 < s.length() && Character.isLowSurrogate(s.charAt(i + 1))) {
                    i++;
                    continue;
                }
                return i;
            }
            if (Character.isLowSurrogate(c)) {
                return i;
            }
        }
        return -1;
    }
}
