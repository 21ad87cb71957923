package io.moeflow.curriculum;

import org.junit.jupiter.api.Test;

import java.util.ArrayDeque;
import java.util.Deque;
import java.util.List;
import java.util.TreeSet;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class BuiltinGeneratorTest {
    private static final Dataset DATA = Dataset.builtin(BuiltinConfig.defaults());

    @Test
    void shouldBeDeterministicForASeed() {
        assertEquals(DATA.fingerprint(), Dataset.builtin(BuiltinConfig.defaults()).fingerprint());
        assertNotEquals(DATA.fingerprint(),
                Dataset.builtin(new BuiltinConfig(BuiltinConfig.ALL_DOMAINS, 5000, 99)).fingerprint());
    }

    @Test
    void shouldKeepOtherDomainsUnchangedWhenOneIsAdded() {
        final Dataset arith = Dataset.builtin(new BuiltinConfig(List.of("arith"), 300, 5));
        final Dataset both = Dataset.builtin(new BuiltinConfig(List.of("copy", "arith"), 300, 5));
        final List<String> arithInBoth = DatasetTest.texts(both).stream().filter(t -> !t.startsWith("copy")).toList();
        assertEquals(DatasetTest.texts(arith), arithInBoth);
    }

    @Test
    void shouldCoverEveryDomainAndTheWholeDifficultyRange() {
        assertEquals(BuiltinConfig.ALL_DOMAINS, DATA.domains());
        assertEquals(6 * 5000, DATA.size());
        for (int dom = 0; dom < DATA.domains().size(); dom++) {
            final TreeSet<Double> levels = new TreeSet<>();
            for (int i = 0; i < DATA.size(); i++) {
                if (DATA.domainIndex(i) == dom) {
                    levels.add(DATA.difficulty(i));
                }
            }
            assertEquals(0.0, levels.first(), DATA.domains().get(dom));
            assertEquals(1.0, levels.last(), DATA.domains().get(dom));
            assertTrue(levels.size() >= 6, DATA.domains().get(dom) + " levels " + levels);
            assertFalse(levels.subSet(0.3, 0.7).isEmpty(), "intermediate band has samples");
        }
    }

    @Test
    void shouldKeepEasySamplesShort() {
        // basic band (< 0.3): answered samples fit in 16 bytes, free text in 48, so a small model learns them fast
        for (int i = 0; i < DATA.size() && DATA.difficulty(i) < 0.3; i++) {
            final boolean text = DATA.domains().get(DATA.domainIndex(i)).equals("text");
            assertTrue(DATA.lengthBytes(i) <= (text ? 48 : 16), DATA.sample(i).text());
        }
    }

    @Test
    void shouldGenerateCorrectAnswers() {
        int checked = 0;
        for (int i = 0; i < DATA.size(); i++) {
            final Sample s = DATA.sample(i);
            switch (s.domain()) {
                case "arith": assertEquals(arith(s.prompt()), s.answer(), s.text()); break;
                case "brackets": assertEquals(closing(s.prompt()), s.answer(), s.text()); break;
                case "copy": assertEquals(word(s.prompt(), "copy "), s.answer(), s.text()); break;
                case "reverse":
                    assertEquals(new StringBuilder(word(s.prompt(), "rev ")).reverse().toString(), s.answer(), s.text());
                    break;
                case "pattern": checkPattern(s); break;
                case "text":
                    assertFalse(s.hasAnswer(), s.text());
                    assertTrue(s.text().endsWith(".\n"), s.text());
                    continue;
                default: throw new AssertionError("unexpected domain " + s.domain());
            }
            checked++;
        }
        assertEquals(5 * 5000, checked);
    }

    @Test
    void shouldRejectUnknownDomainAndBadCount() {
        final IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> new BuiltinConfig(List.of("poetry"), 10, 1));
        assertTrue(e.getMessage().contains("domain=poetry"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> new BuiltinConfig(List.of("copy", "copy"), 10, 1));
        assertThrows(IllegalArgumentException.class, () -> new BuiltinConfig(List.of(), 10, 1));
        final IllegalArgumentException e2 = assertThrows(IllegalArgumentException.class,
                () -> new BuiltinConfig(List.of("copy"), 0, 1));
        assertTrue(e2.getMessage().contains("samplesPerDomain=0"), e2.getMessage());
    }

    private static String arith(final String prompt) {
        final String expr = prompt.substring(0, prompt.length() - 1); // drop '='
        for (final char op : new char[] {'+', '-', '*'}) {
            final int at = expr.indexOf(op);
            if (at > 0) {
                final long a = Long.parseLong(expr.substring(0, at));
                final long b = Long.parseLong(expr.substring(at + 1));
                return Long.toString(op == '+' ? a + b : op == '-' ? a - b : a * b);
            }
        }
        throw new AssertionError("no operator in " + prompt);
    }

    /** Recomputes the closing sequence with a stack over the prompt. */
    private static String closing(final String prompt) {
        final Deque<Character> stack = new ArrayDeque<>();
        for (final char c : prompt.substring(0, prompt.length() - 1).toCharArray()) {
            final int open = "([{<".indexOf(c);
            final int close = ")]}>".indexOf(c);
            if (open >= 0) {
                stack.push(")]}>".charAt(open));
            } else if (close >= 0) {
                assertEquals(c, stack.pop(), "closed groups in the prompt are balanced: " + prompt);
            }
        }
        final StringBuilder sb = new StringBuilder();
        while (!stack.isEmpty()) {
            sb.append(stack.pop());
        }
        return sb.toString();
    }

    private static String word(final String prompt, final String prefix) {
        assertTrue(prompt.startsWith(prefix), prompt);
        return prompt.substring(prefix.length(), prompt.length() - 1);
    }

    /** The answer continues the shown string with period p = answer length, and the shown string has period p. */
    private static void checkPattern(final Sample s) {
        final String shown = word(s.prompt(), "seq ");
        final String all = shown + s.answer();
        final int p = s.answer().length();
        for (int i = p; i < all.length(); i++) {
            assertEquals(all.charAt(i - p), all.charAt(i), s.text());
        }
        assertEquals(p, shown.substring(0, p).chars().distinct().count(), "period letters are distinct: " + s.text());
        assertTrue(shown.length() >= 2 * p, s.text());
    }
}
