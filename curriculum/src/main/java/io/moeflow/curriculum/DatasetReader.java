package io.moeflow.curriculum;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.core.StreamReadFeature;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Reads JSONL and plain-text files into samples, line by line, so every problem is reported with its 1-based
 * line. The whole file is read at once (datasets live in memory anyway; at most 2 GiB per file).
 */
final class DatasetReader {
    /** Duplicate keys are an error: {"difficulty": 0.1, "difficulty": 0.9} is ambiguous. */
    private static final JsonFactory JSON = JsonFactory.builder()
            .enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION)
            .build();
    private static final String SKIP_HINT = " (or pass --skip-bad-samples to skip and count such lines)";
    private static final String JSONL_EXAMPLE =
            "{\"text\": \"3+4=7\", \"difficulty\": 0.1, \"domain\": \"arith\"}";
    /** Largest file read: one Java array (datasets hold all samples in one byte array). */
    private static final long MAX_FILE_BYTES = Integer.MAX_VALUE - 8;
    /** Domain of samples read by {@link #readText}. */
    static final String TEXT_DOMAIN = "text";

    private DatasetReader() {
    }

    /** A bad line: turned into a {@link DataFormatException} or counted, depending on skipBad. */
    private static final class BadLine extends Exception {
        private static final long serialVersionUID = 1L;
        private final String fix;

        BadLine(final String problem, final String fix) {
            super(problem, null, false, false);
            this.fix = fix;
        }
    }

    /** One line of a file: its number and decoded text. */
    private record Line(long number, String text) {
    }

    static Dataset readJsonl(final Path file, final boolean skipBad) {
        final List<Sample> samples = new ArrayList<>();
        final int skipped = forEachLine(file, skipBad, line -> samples.add(parseJsonLine(line.text())));
        return finish(file, samples, skipped);
    }

    static Dataset readText(final Path file, final boolean skipBad) {
        final List<String> texts = new ArrayList<>();
        final int skipped = forEachLine(file, skipBad, line -> {
            final int control = controlCharacter(line.text());
            if (control >= 0) {
                throw new BadLine(String.format("control character U+%04X at column %d: this looks like binary data,"
                        + " not text", (int) line.text().charAt(control), control + 1),
                        "give a UTF-8 text file with one sample per line" + SKIP_HINT);
            }
            texts.add(line.text());
        });
        // Difficulty = length percentile: the share of the other lines that are strictly shorter (in bytes).
        final int n = texts.size();
        final int[] lengths = new int[n];
        for (int i = 0; i < n; i++) {
            lengths[i] = texts.get(i).getBytes(StandardCharsets.UTF_8).length;
        }
        final int[] sorted = lengths.clone();
        Arrays.sort(sorted);
        final Map<Integer, Integer> shorterCount = new HashMap<>(); // length -> lines strictly shorter
        for (int i = n - 1; i >= 0; i--) {
            shorterCount.put(sorted[i], i); // the lowest index of each length wins
        }
        final List<Sample> samples = new ArrayList<>(n);
        for (int i = 0; i < n; i++) {
            final int shorter = shorterCount.get(lengths[i]);
            samples.add(new Sample(texts.get(i), n == 1 ? 0.0 : shorter / (double) (n - 1), TEXT_DOMAIN));
        }
        return finish(file, samples, skipped);
    }

    private interface LineHandler {
        void accept(Line line) throws BadLine;
    }

    /**
     * Calls the handler for each non-blank line; returns how many bad lines were skipped.
     * A line that is not valid UTF-8 is a bad line too.
     */
    private static int forEachLine(final Path file, final boolean skipBad, final LineHandler handler) {
        final byte[] bytes = readAll(file);
        final CharsetDecoder utf8 = StandardCharsets.UTF_8.newDecoder()
                .onMalformedInput(CodingErrorAction.REPORT)
                .onUnmappableCharacter(CodingErrorAction.REPORT);
        int start = hasUtf8Bom(bytes) ? 3 : 0;
        long number = 0;
        int skipped = 0;
        int nonBlank = 0;
        while (start < bytes.length) {
            number++;
            int end = start;
            while (end < bytes.length && bytes[end] != '\n') {
                end++;
            }
            final int next = end + 1;
            if (end > start && bytes[end - 1] == '\r') {
                end--; // CRLF line ending
            }
            try {
                final String text = decode(utf8, bytes, start, end - start);
                if (!text.isBlank()) {
                    nonBlank++;
                    handler.accept(new Line(number, text));
                }
            } catch (final BadLine bad) {
                if (!skipBad) {
                    throw new DataFormatException(file, number, bad.getMessage(), bad.fix);
                }
                skipped++;
            }
            start = next;
        }
        if (nonBlank == 0) {
            throw new DataFormatException(file, 1, "the file is empty (no non-blank lines, so no samples)",
                    "give a file with at least one sample");
        }
        return skipped;
    }

    private static Dataset finish(final Path file, final List<Sample> samples, final int skipped) {
        if (samples.isEmpty()) {
            throw new DataFormatException(file, 0, "no usable samples: all " + skipped + " non-blank lines were bad",
                    "fix the file; run without --skip-bad-samples to see the first bad line");
        }
        return Dataset.of(file.toString(), samples, skipped);
    }

    private static byte[] readAll(final Path file) {
        if (Files.isDirectory(file)) {
            throw new DataFormatException(file, 0, "is a directory, not a data file",
                    "give the path of a .jsonl or text file");
        }
        try {
            final long sizeBytes = Files.size(file);
            if (sizeBytes > MAX_FILE_BYTES) {
                throw new DataFormatException(file, 0, "is " + sizeBytes + " bytes, more than one dataset holds ("
                        + MAX_FILE_BYTES + ")", "split it into smaller files");
            }
            return Files.readAllBytes(file);
        } catch (final IOException e) {
            throw new DataFormatException(file, 0, "cannot read the file (" + e + ")",
                    "check that the path exists and is a readable regular file");
        }
    }

    private static String decode(final CharsetDecoder utf8, final byte[] bytes, final int offset, final int length)
            throws BadLine {
        try {
            return utf8.decode(ByteBuffer.wrap(bytes, offset, length)).toString();
        } catch (final CharacterCodingException e) {
            throw new BadLine("not valid UTF-8 (" + e.getMessage() + ")", "save the file as UTF-8" + SKIP_HINT);
        }
    }

    private static Sample parseJsonLine(final String line) throws BadLine {
        String text = null;
        String prompt = null;
        String answer = null;
        String domain = null;
        double difficulty = Double.NaN;
        boolean hasDifficulty = false;
        int answerStart = -1;
        boolean hasAnswerStart = false;
        try (JsonParser p = JSON.createParser(line)) {
            final JsonToken first = p.nextToken();
            if (first != JsonToken.START_OBJECT) {
                throw new BadLine("expected a JSON object, found " + describe(first),
                        "write one object per line, e.g. " + JSONL_EXAMPLE + SKIP_HINT);
            }
            while (p.nextToken() == JsonToken.FIELD_NAME) {
                final String name = p.currentName();
                final JsonToken value = p.nextToken();
                switch (name) {
                    case "text": text = string(name, value, p); break;
                    case "prompt": prompt = string(name, value, p); break;
                    case "answer": answer = string(name, value, p); break;
                    case "domain": domain = string(name, value, p); break;
                    case "difficulty":
                        if (value != JsonToken.VALUE_NUMBER_INT && value != JsonToken.VALUE_NUMBER_FLOAT) {
                            throw wrongType(name, "a number in [0,1]", value, p);
                        }
                        difficulty = p.getDoubleValue();
                        hasDifficulty = true;
                        break;
                    case "answer_start":
                        if (value != JsonToken.VALUE_NUMBER_INT) {
                            throw wrongType(name, "an integer (a character index into \"text\")", value, p);
                        }
                        answerStart = p.getIntValue();
                        hasAnswerStart = true;
                        break;
                    default:
                        p.skipChildren(); // other fields (ids, sources) are allowed and ignored
                }
            }
            final JsonToken after = p.nextToken();
            if (after != null) {
                throw new BadLine("found " + describe(after) + " after the JSON object",
                        "put exactly one object on each line" + SKIP_HINT);
            }
        } catch (final JsonProcessingException e) {
            throw new BadLine("malformed JSON at column " + e.getLocation().getColumnNr() + ": "
                    + e.getOriginalMessage().replace('\n', ' '),
                    "write one JSON object per line, e.g. " + JSONL_EXAMPLE + SKIP_HINT);
        } catch (final IOException e) {
            throw new BadLine("cannot parse the line (" + e + ")", "write one JSON object per line" + SKIP_HINT);
        }
        return toSample(text, prompt, answer, domain, difficulty, hasDifficulty, answerStart, hasAnswerStart);
    }

    private static Sample toSample(final String text, final String prompt, final String answer, final String domain,
                                   final double difficulty, final boolean hasDifficulty, final int answerStart,
                                   final boolean hasAnswerStart) throws BadLine {
        final String fields = "give \"text\" (optionally with \"answer_start\") or \"prompt\" and \"answer\"";
        if (text != null && (prompt != null || answer != null)) {
            throw new BadLine("both \"text\" and \"prompt\"/\"answer\" are present", fields + SKIP_HINT);
        }
        if (text == null && (prompt == null || answer == null)) {
            throw new BadLine(prompt != null || answer != null ? "\"prompt\" and \"answer\" must come together"
                    : "missing field \"text\"", fields + ", e.g. " + JSONL_EXAMPLE + SKIP_HINT);
        }
        if (prompt != null && hasAnswerStart) {
            throw new BadLine("\"answer_start\" is only allowed with \"text\"", fields + SKIP_HINT);
        }
        if (!hasDifficulty) {
            throw new BadLine("missing field \"difficulty\"", "add \"difficulty\": a number in [0,1]" + SKIP_HINT);
        }
        if (!(difficulty >= 0.0 && difficulty <= 1.0)) {
            throw new BadLine("\"difficulty\"=" + difficulty + " is outside [0,1]",
                    "rescale difficulties to [0,1] (0 = easiest)" + SKIP_HINT);
        }
        if (domain == null) {
            throw new BadLine("missing field \"domain\"", "add \"domain\": a name such as \"code\"" + SKIP_HINT);
        }
        final String fullText = text != null ? text : prompt + answer;
        final int start = text != null ? (hasAnswerStart ? answerStart : -1) : prompt.length();
        if (prompt != null && answer.isEmpty()) {
            throw new BadLine("\"answer\" is empty", "give a non-empty answer" + SKIP_HINT);
        }
        try {
            return new Sample(fullText, difficulty, domain, start);
        } catch (final IllegalArgumentException e) {
            throw new BadLine(e.getMessage().replace("answerStart=", "\"answer_start\"="), "correct the sample" + SKIP_HINT);
        }
    }

    private static String string(final String name, final JsonToken value, final JsonParser p)
            throws IOException, BadLine {
        if (value != JsonToken.VALUE_STRING) {
            throw wrongType(name, "a string", value, p);
        }
        return p.getText();
    }

    private static BadLine wrongType(final String name, final String expected, final JsonToken value,
                                     final JsonParser p) throws IOException {
        p.skipChildren();
        return new BadLine("\"" + name + "\" must be " + expected + ", found " + describe(value),
                "fix the type of \"" + name + "\"" + SKIP_HINT);
    }

    private static String describe(final JsonToken token) {
        if (token == null) {
            return "nothing";
        }
        switch (token) {
            case START_OBJECT: return "an object";
            case START_ARRAY: return "an array";
            case VALUE_STRING: return "a string";
            case VALUE_NUMBER_INT: return "an integer";
            case VALUE_NUMBER_FLOAT: return "a decimal number";
            case VALUE_TRUE:
            case VALUE_FALSE: return "a boolean";
            case VALUE_NULL: return "null";
            default: return token.toString();
        }
    }

    private static boolean hasUtf8Bom(final byte[] b) {
        return b.length >= 3 && (b[0] & 0xFF) == 0xEF && (b[1] & 0xFF) == 0xBB && (b[2] & 0xFF) == 0xBF;
    }

    /** Index of the first control character other than tab, or -1. */
    private static int controlCharacter(final String s) {
        for (int i = 0; i < s.length(); i++) {
            final char c = s.charAt(i);
            if (c != '\t' && (c < 0x20 || c == 0x7F)) {
                return i;
            }
        }
        return -1;
    }
}
