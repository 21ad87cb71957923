package io.moeflow.curriculum;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * The built-in sample generator: short, regular texts whose difficulty is a level of a known structure, and whose
 * answers can be checked by recomputation. Domains are described in {@link BuiltinConfig}.
 */
final class BuiltinGenerator {
    private static final String LETTERS = "abcdefghijklmnopqrstuvwxyz";
    private static final String OPEN = "([{<";
    private static final String CLOSE = ")]}>";
    private static final String[] NOUNS = {"cat", "dog", "bird", "fish", "man", "girl", "boy", "tree", "ship", "king"};
    private static final String[] ADJECTIVES = {"old", "small", "red", "happy", "quiet", "tall"};
    private static final String[] INTRANSITIVE = {"sleeps", "runs", "sings", "waits", "falls"};
    private static final String[] TRANSITIVE = {"sees", "likes", "finds", "helps", "chases", "calls"};
    private static final String[] ADVERBS = {"today", "again", "slowly", "quietly", "at night"};
    private static final String[] DETERMINERS = {"the", "a", "my", "one"};
    private static final String[] CONJUNCTIONS = {"and", "but", "because", "so"};
    private static final int[] TEXT_CLAUSES = {1, 1, 2, 1, 3, 2, 2, 3};
    private static final int[] TEXT_MODIFIERS = {0, 1, 0, 2, 0, 1, 2, 2};

    private BuiltinGenerator() {
    }

    static List<Sample> generate(final BuiltinConfig config) {
        final List<Sample> out = new ArrayList<>(config.domains().size() * config.samplesPerDomain());
        for (final String domain : config.domains()) {
            final byte[] name = domain.getBytes(StandardCharsets.UTF_8);
            final SplitMix64 rng = new SplitMix64(SplitMix64.hash(config.seed(), name, 0, name.length));
            for (int i = 0; i < config.samplesPerDomain(); i++) {
                out.add(sample(domain, rng));
            }
        }
        return out;
    }

    private static Sample sample(final String domain, final SplitMix64 rng) {
        switch (domain) {
            case "arith":
                return arith(rng.nextInt(8), rng);
            case "brackets":
                return brackets(rng.nextInt(8), rng);
            case "copy":
                final String w = word(1 + rng.nextInt(8), rng);
                return answered("copy " + w + "=", w, (w.length() - 1) / 7.0, domain);
            case "reverse":
                final String r = word(1 + rng.nextInt(8), rng);
                return answered("rev " + r + "=", new StringBuilder(r).reverse().toString(), (r.length() - 1) / 7.0,
                        domain);
            case "pattern":
                return pattern(rng.nextInt(6), rng);
            case "text":
                return text(rng.nextInt(8), rng);
            default:
                throw new IllegalArgumentException("domain=" + domain + " is not built in");
        }
    }

    /** Levels: 0 a+b (1 digit), 1 a-b (1 digit, a >= b), 2 2+1 digits, 3 2+2 digits, 4 a-b (2 digits), 5 a*b (1 digit), 6 3+3 digits, 7 a*b (2x1 digits). */
    private static Sample arith(final int level, final SplitMix64 rng) {
        final long a;
        final long b;
        final char op;
        switch (level) {
            case 0: a = uniform(0, 9, rng); b = uniform(0, 9, rng); op = '+'; break;
            case 1: a = uniform(0, 9, rng); b = uniform(0, a, rng); op = '-'; break;
            case 2: a = uniform(10, 99, rng); b = uniform(0, 9, rng); op = '+'; break;
            case 3: a = uniform(10, 99, rng); b = uniform(10, 99, rng); op = '+'; break;
            case 4: a = uniform(10, 99, rng); b = uniform(10, a, rng); op = '-'; break;
            case 5: a = uniform(0, 9, rng); b = uniform(0, 9, rng); op = '*'; break;
            case 6: a = uniform(100, 999, rng); b = uniform(100, 999, rng); op = '+'; break;
            default: a = uniform(10, 99, rng); b = uniform(0, 9, rng); op = '*'; break;
        }
        final long c = op == '+' ? a + b : op == '-' ? a - b : a * b;
        return answered(a + String.valueOf(op) + b + "=", Long.toString(c), level / 7.0, "arith");
    }

    /** Depth = level + 1 unclosed brackets, each after a letter like a call; from level 3 some closed groups are mixed in. */
    private static Sample brackets(final int level, final SplitMix64 rng) {
        final StringBuilder prompt = new StringBuilder();
        final StringBuilder closes = new StringBuilder();
        for (int i = 0; i <= level; i++) {
            final int kind = rng.nextInt(OPEN.length());
            prompt.append(LETTERS.charAt(rng.nextInt(LETTERS.length()))).append(OPEN.charAt(kind));
            closes.append(CLOSE.charAt(kind));
            if (level >= 3 && rng.nextInt(4) == 0) {
                final int inner = rng.nextInt(OPEN.length());
                prompt.append(LETTERS.charAt(rng.nextInt(LETTERS.length())))
                        .append(OPEN.charAt(inner)).append(CLOSE.charAt(inner));
            }
        }
        return answered(prompt.append('=').toString(), closes.reverse().toString(), level / 7.0, "brackets");
    }

    /** Period p = level + 1 distinct letters, shown twice plus a partial period; the answer is the next p letters. */
    private static Sample pattern(final int level, final SplitMix64 rng) {
        final int period = level + 1;
        final char[] letters = LETTERS.toCharArray();
        for (int i = 0; i < period; i++) { // partial Fisher-Yates: the first `period` letters are distinct
            final int j = i + rng.nextInt(letters.length - i);
            final char t = letters[i];
            letters[i] = letters[j];
            letters[j] = t;
        }
        final String unit = new String(letters, 0, period);
        final int shift = rng.nextInt(period);
        final String prompt = "seq " + unit + unit + unit.substring(0, shift) + "=";
        final String answer = unit.substring(shift) + unit.substring(0, shift);
        return answered(prompt, answer, level / 5.0, "pattern");
    }

    /**
     * Clauses joined by conjunctions, each with 0, 1 or 2 modifiers (0: "the cat sleeps"; 1: adjective and object;
     * 2: a second adjective and an adverb). The levels are ordered by word count: 3, 6, 7, 8, 11, 13, 17, 26 words.
     */
    private static Sample text(final int level, final SplitMix64 rng) {
        final int clauses = TEXT_CLAUSES[level];
        final int modifiers = TEXT_MODIFIERS[level];
        final StringBuilder s = new StringBuilder();
        for (int c = 0; c < clauses; c++) {
            if (c > 0) {
                s.append(' ').append(pick(CONJUNCTIONS, rng)).append(' ');
            }
            s.append(pick(DETERMINERS, rng)).append(' ');
            if (modifiers >= 1) {
                s.append(pick(ADJECTIVES, rng)).append(' ');
            }
            s.append(pick(NOUNS, rng)).append(' ');
            if (modifiers == 0) {
                s.append(pick(INTRANSITIVE, rng));
            } else {
                s.append(pick(TRANSITIVE, rng)).append(' ').append(pick(DETERMINERS, rng)).append(' ');
                if (modifiers == 2) {
                    s.append(pick(ADJECTIVES, rng)).append(' ');
                }
                s.append(pick(NOUNS, rng));
                if (modifiers == 2) {
                    s.append(' ').append(pick(ADVERBS, rng));
                }
            }
        }
        return new Sample(s.append('.').toString(), level / 7.0, "text");
    }

    private static Sample answered(final String prompt, final String answer, final double difficulty,
                                   final String domain) {
        return new Sample(prompt + answer, difficulty, domain, prompt.length());
    }

    private static String word(final int length, final SplitMix64 rng) {
        final char[] w = new char[length];
        for (int i = 0; i < length; i++) {
            w[i] = LETTERS.charAt(rng.nextInt(LETTERS.length()));
        }
        return new String(w);
    }

    private static long uniform(final long lo, final long hi, final SplitMix64 rng) {
        return lo + rng.nextInt((int) (hi - lo + 1));
    }

    private static String pick(final String[] words, final SplitMix64 rng) {
        return words[rng.nextInt(words.length)];
    }
}
