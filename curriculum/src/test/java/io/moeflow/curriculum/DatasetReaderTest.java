package io.moeflow.curriculum;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class DatasetReaderTest {
    private static final String GOOD = "{\"text\": \"3+4=7\", \"difficulty\": 0.1, \"domain\": \"arith\", \"answer_start\": 4}";

    @TempDir
    Path dir;

    private Path write(final String name, final String content) throws IOException {
        return Files.writeString(dir.resolve(name), content, StandardCharsets.UTF_8);
    }

    @Test
    void shouldReadJsonlWithBothAnswerForms() throws IOException {
        final Path f = write("ok.jsonl", GOOD + "\n\n"
                + "{\"prompt\": \"f(=\", \"answer\": \")\", \"difficulty\": 0, \"domain\": \"brackets\", \"id\": [1, {\"x\": 2}]}\r\n"
                + "{\"text\": \"free text\", \"difficulty\": 1, \"domain\": \"prose\"}\n");
        final Dataset d = Dataset.fromJsonl(f, false);
        assertEquals(3, d.size());
        assertEquals(0, d.skippedCount());
        assertEquals(List.of("arith", "brackets", "prose"), d.domains());
        final Sample brackets = d.sample(0);
        assertEquals("f(=)\n", brackets.text());
        assertEquals(")", brackets.answer());
        assertEquals("7", d.sample(1).answer());
        assertEquals(-1, d.sample(2).answerStart());
        assertEquals(f.toString(), d.source());
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource(delimiter = '|', quoteCharacter = '`', value = {
        "malformed JSON          | {\"text\": \"a\", \"difficulty\": 0.1,   | malformed JSON",
        "not an object           | [1, 2]                                  | expected a JSON object, found an array",
        "missing text            | {\"difficulty\": 0.1, \"domain\": \"x\"} | missing field \"text\"",
        "missing difficulty      | {\"text\": \"a\", \"domain\": \"x\"}     | missing field \"difficulty\"",
        "missing domain          | {\"text\": \"a\", \"difficulty\": 0.1}   | missing field \"domain\"",
        "difficulty as string    | {\"text\": \"a\", \"difficulty\": \"0.4\", \"domain\": \"x\"} | \"difficulty\" must be a number in [0,1], found a string",
        "text as number          | {\"text\": 5, \"difficulty\": 0.4, \"domain\": \"x\"} | \"text\" must be a string, found an integer",
        "domain null             | {\"text\": \"a\", \"difficulty\": 0.4, \"domain\": null} | \"domain\" must be a string, found null",
        "difficulty above 1      | {\"text\": \"a\", \"difficulty\": 1.5, \"domain\": \"x\"} | \"difficulty\"=1.5 is outside [0,1]",
        "difficulty below 0      | {\"text\": \"a\", \"difficulty\": -0.1, \"domain\": \"x\"} | \"difficulty\"=-0.1 is outside [0,1]",
        "empty text              | {\"text\": \"\", \"difficulty\": 0.4, \"domain\": \"x\"} | text is empty",
        "answer_start too large  | {\"text\": \"ab\", \"difficulty\": 0.4, \"domain\": \"x\", \"answer_start\": 2} | \"answer_start\"=2",
        "answer_start not int    | {\"text\": \"ab\", \"difficulty\": 0.4, \"domain\": \"x\", \"answer_start\": 1.5} | \"answer_start\" must be an integer",
        "prompt without answer   | {\"prompt\": \"ab\", \"difficulty\": 0.4, \"domain\": \"x\"} | \"prompt\" and \"answer\" must come together",
        "text and prompt         | {\"text\": \"a\", \"prompt\": \"b\", \"answer\": \"c\", \"difficulty\": 0.4, \"domain\": \"x\"} | both \"text\" and \"prompt\"",
        "duplicate key           | {\"text\": \"a\", \"difficulty\": 0.1, \"difficulty\": 0.9, \"domain\": \"x\"} | Duplicate field 'difficulty'",
        "trailing content        | {\"text\": \"a\", \"difficulty\": 0.1, \"domain\": \"x\"} {} | found an object after the JSON object",
    })
    void shouldReportBadJsonlLineWithFileAndLine(final String name, final String badLine, final String expected)
            throws IOException {
        final Path f = write("bad.jsonl", GOOD + "\n\n" + badLine + "\n" + GOOD + "\n");
        final DataFormatException e = assertThrows(DataFormatException.class, () -> Dataset.fromJsonl(f, false));
        assertTrue(e.getMessage().startsWith(f + ":3: "), e.getMessage());
        assertTrue(e.getMessage().contains(expected), e.getMessage());
        assertTrue(e.getMessage().contains("--skip-bad-samples"), "says what to do: " + e.getMessage());
        assertEquals(3, e.line());
        assertEquals(f, e.file());

        final Dataset skipped = Dataset.fromJsonl(f, true);
        assertEquals(2, skipped.size(), name);
        assertEquals(1, skipped.skippedCount(), name);
    }

    @Test
    void shouldReportInvalidUtf8WithLine() throws IOException {
        final Path f = dir.resolve("latin1.jsonl");
        final byte[] good = (GOOD + "\n").getBytes(StandardCharsets.UTF_8);
        final byte[] bad = "{\"text\": \"caf\u00e9\", \"difficulty\": 0.1, \"domain\": \"x\"}\n"
                .getBytes(StandardCharsets.ISO_8859_1);
        final byte[] all = new byte[good.length + bad.length];
        System.arraycopy(good, 0, all, 0, good.length);
        System.arraycopy(bad, 0, all, good.length, bad.length);
        Files.write(f, all);
        final DataFormatException e = assertThrows(DataFormatException.class, () -> Dataset.fromJsonl(f, false));
        assertTrue(e.getMessage().startsWith(f + ":2: not valid UTF-8"), e.getMessage());
        assertEquals(1, Dataset.fromJsonl(f, true).skippedCount());
    }

    @Test
    void shouldRejectEmptyFileEvenWhenSkippingBadSamples() throws IOException {
        final Path empty = write("empty.jsonl", "");
        final Path blank = write("blank.jsonl", "\n  \n\r\n");
        for (final Path f : List.of(empty, blank)) {
            for (final boolean skip : new boolean[] {false, true}) {
                final DataFormatException e = assertThrows(DataFormatException.class, () -> Dataset.fromJsonl(f, skip));
                assertTrue(e.getMessage().startsWith(f + ":1: the file is empty"), e.getMessage());
                final DataFormatException t = assertThrows(DataFormatException.class, () -> Dataset.fromText(f, skip));
                assertTrue(t.getMessage().contains("the file is empty"), t.getMessage());
            }
        }
    }

    @Test
    void shouldRejectFileWhoseLinesAreAllBadWhenSkipping() throws IOException {
        final Path f = write("allbad.jsonl", "nope\n{}\n");
        final DataFormatException e = assertThrows(DataFormatException.class, () -> Dataset.fromJsonl(f, true));
        assertTrue(e.getMessage().contains("all 2 non-blank lines were bad"), e.getMessage());
    }

    @Test
    void shouldReportUnreadableFile() {
        final Path missing = dir.resolve("missing.jsonl");
        final DataFormatException e = assertThrows(DataFormatException.class, () -> Dataset.fromJsonl(missing, true));
        assertTrue(e.getMessage().startsWith(missing + ": cannot read the file"), e.getMessage());
        assertTrue(e.getMessage().contains("check that the path exists"), e.getMessage());
        assertEquals(0, e.line());
        final DataFormatException d = assertThrows(DataFormatException.class, () -> Dataset.fromText(dir, false));
        assertTrue(d.getMessage().contains("is a directory"), d.getMessage());
    }

    @Test
    void shouldReadPlainTextWithLengthPercentileDifficulty() throws IOException {
        final Path f = write("t.txt", "\uFEFFbb\n\naaaa\r\nc\nbb\ndddddddd\n");
        final Dataset d = Dataset.fromText(f, false);
        assertEquals(List.of("text"), d.domains());
        // 5 lines with lengths 2,4,1,2,8: strictly shorter others / (n-1) = 1/4, 3/4, 0, 1/4, 4/4
        assertEquals(List.of("c\n", "bb\n", "bb\n", "aaaa\n", "dddddddd\n"), DatasetTest.texts(d));
        assertEquals(0.0, d.difficulty(0));
        assertEquals(0.25, d.difficulty(1));
        assertEquals(0.25, d.difficulty(2));
        assertEquals(0.75, d.difficulty(3));
        assertEquals(1.0, d.difficulty(4));
        assertEquals(-1, d.answerStartByte(0));
    }

    @Test
    void shouldReportBinaryLineInTextFile() throws IOException {
        final Path f = write("bin.txt", "fine\nbad\u0000line\nfine too\n");
        final DataFormatException e = assertThrows(DataFormatException.class, () -> Dataset.fromText(f, false));
        assertTrue(e.getMessage().startsWith(f + ":2: control character U+0000 at column 4"), e.getMessage());
        final Dataset skipped = Dataset.fromText(f, true);
        assertEquals(2, skipped.size());
        assertEquals(1, skipped.skippedCount());
    }
}
