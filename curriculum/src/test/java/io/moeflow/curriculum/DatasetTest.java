package io.moeflow.curriculum;

import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class DatasetTest {

    @Test
    void shouldSortByDifficultyKeepingInputOrderForTies() {
        final Dataset d = Dataset.of("t", List.of(new Sample("c", 0.5, "x"), new Sample("a", 0.1, "y"),
                new Sample("d", 0.5, "x"), new Sample("b", 0.1, "x")));
        assertEquals(List.of("a\n", "b\n", "c\n", "d\n"), texts(d));
        assertEquals(List.of("x", "y"), d.domains(), "domains in order of first appearance");
        assertEquals(1, d.domainIndex(0));
        assertEquals(0, d.lowerBound(0.1));
        assertEquals(2, d.upperBound(0.1));
        assertEquals(2, d.lowerBound(0.3));
        assertEquals(4, d.upperBound(1.0));
        assertEquals(0, d.upperBound(0.05));
    }

    @Test
    void shouldStoreUtf8BytesWithOneTrailingNewline() {
        final Dataset d = Dataset.of("t", List.of(new Sample("é=ü", 0.2, "x", 2), new Sample("ok\n", 0.3, "x")));
        assertEquals(6, d.lengthBytes(0), "é and ü are 2 bytes each, plus '=' and the added newline");
        assertEquals(3, d.answerStartByte(0), "answer starts after 'é=' = 3 bytes");
        assertEquals(0xC3, d.token(0, 0));
        assertEquals('\n', d.token(0, 5));
        assertEquals(3, d.lengthBytes(1), "an existing newline is not doubled");
        final Sample s = d.sample(0);
        assertEquals("é=ü\n", s.text());
        assertEquals("ü", s.answer());
        assertEquals("é=", s.prompt());
        assertEquals(-1, d.answerStartByte(1));
    }

    @Test
    void shouldSplitHeldOutDisjointDeterministicAndComplete() {
        final Dataset all = Dataset.builtin(BuiltinConfig.defaults());
        final Dataset held = all.heldOut();
        final Dataset train = all.training();
        assertEquals(all.size(), held.size() + train.size());
        final Set<String> heldTexts = new HashSet<>(texts(held));
        for (final String t : texts(train)) {
            assertTrue(!heldTexts.contains(t), "text in both splits: " + t);
        }
        assertEquals(held.fingerprint(), all.heldOut().fingerprint(), "same split every time");
        assertEquals(all.domains(), held.domains(), "subsets keep the parent's domain list");
        // held-out share of the samples is near 10% (duplicated easy texts move together, so allow some spread)
        assertEquals(0.10, held.size() / (double) all.size(), 0.03);
        for (int i = 1; i < held.size(); i++) {
            assertTrue(held.difficulty(i - 1) <= held.difficulty(i), "subsets stay sorted");
        }
        assertEquals(0, all.heldOut(0.0).size());
        assertEquals(all.size(), all.heldOut(1.0).size());
    }

    @Test
    void shouldChangeFingerprintWithContent() {
        final Dataset a = Dataset.of("a", List.of(new Sample("x", 0.1, "d")));
        final Dataset b = Dataset.of("b", List.of(new Sample("x", 0.1, "d")));
        assertEquals(a.fingerprint(), b.fingerprint(), "the source name is not content");
        assertNotEquals(a.fingerprint(), Dataset.of("a", List.of(new Sample("y", 0.1, "d"))).fingerprint());
        assertNotEquals(a.fingerprint(), Dataset.of("a", List.of(new Sample("x", 0.2, "d"))).fingerprint());
        assertNotEquals(a.fingerprint(), Dataset.of("a", List.of(new Sample("x", 0.1, "e"))).fingerprint());
    }

    @Test
    void shouldValidateSamples() {
        assertMessage("difficulty=1.5", () -> new Sample("a", 1.5, "x"));
        assertMessage("difficulty=NaN", () -> new Sample("a", Double.NaN, "x"));
        assertMessage("text is empty", () -> new Sample("", 0.5, "x"));
        assertMessage("domain is empty", () -> new Sample("a", 0.5, ""));
        assertMessage("answerStart=3", () -> new Sample("abc", 0.5, "x", 3));
        assertMessage("unpaired UTF-16 surrogate at index 1", () -> new Sample("a\uD800b", 0.5, "x"));
    }

    private static void assertMessage(final String part, final Runnable r) {
        final IllegalArgumentException e = assertThrows(IllegalArgumentException.class, r::run);
        assertTrue(e.getMessage().contains(part), e.getMessage());
    }

    static List<String> texts(final Dataset d) {
        final java.util.ArrayList<String> out = new java.util.ArrayList<>();
        for (int i = 0; i < d.size(); i++) {
            final byte[] b = new byte[d.lengthBytes(i)];
            for (int j = 0; j < b.length; j++) {
                b[j] = (byte) d.token(i, j);
            }
            out.add(new String(b, StandardCharsets.UTF_8));
        }
        return out;
    }
}
