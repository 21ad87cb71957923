package io.moeflow.curriculum;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * An immutable set of samples, held as one UTF-8 byte array and sorted by difficulty (stable: equal difficulties
 * keep their input order), so that "all samples with difficulty in [a,b)" is an index range found by binary search.
 *
 * <p>Every sample's bytes end in {@code '\n'} (added when missing): the scheduler packs samples into rows one after
 * another and the newline is what separates them.
 *
 * <p>Sources: {@link #builtin(BuiltinConfig)}, {@link #fromJsonl(Path, boolean)}, {@link #fromText(Path, boolean)}
 * and {@link #of(String, List)}. {@link #heldOut()} and {@link #training()} split deterministically by a hash of
 * each sample's bytes, so identical texts always land on the same side and the two never share a text.
 */
public final class Dataset {
    /**
     * Share of samples held out for evaluation by {@link #heldOut()}: 10% leaves 90% for training and still gives
     * a few hundred evaluation samples per built-in domain at the default size.
     */
    public static final double HELD_OUT_FRACTION = 0.10;
    /** Seed of the split hash: fixed, so a file splits the same way in every run and every program. */
    private static final long SPLIT_SEED = 0x5EED_0F_5B117L;

    private final String source;
    private final List<String> domains;
    private final int skipped;
    /** Sample i is {@code bytes[offsets[i] .. offsets[i+1])}. */
    final byte[] bytes;
    final int[] offsets;
    final double[] difficulty;
    private final int[] domainIndex;
    private final int[] answerStartChar;
    private final int[] answerStartByte;
    private final long fingerprint;

    private Dataset(final String source, final List<String> domains, final int skipped, final byte[] bytes,
                    final int[] offsets, final double[] difficulty, final int[] domainIndex,
                    final int[] answerStartChar, final int[] answerStartByte) {
        this.source = source;
        this.domains = List.copyOf(domains);
        this.skipped = skipped;
        this.bytes = bytes;
        this.offsets = offsets;
        this.difficulty = difficulty;
        this.domainIndex = domainIndex;
        this.answerStartChar = answerStartChar;
        this.answerStartByte = answerStartByte;
        this.fingerprint = computeFingerprint();
    }

    /** A dataset of the given samples, sorted by difficulty; domains are listed in order of first appearance. */
    public static Dataset of(final String source, final List<Sample> samples) {
        return of(source, samples, 0);
    }

    static Dataset of(final String source, final List<Sample> samples, final int skipped) {
        Objects.requireNonNull(source, "source");
        final int n = samples.size();
        final Map<String, Integer> domainIds = new LinkedHashMap<>();
        for (final Sample s : samples) {
            domainIds.putIfAbsent(s.domain(), domainIds.size());
        }
        final Integer[] order = new Integer[n];
        for (int i = 0; i < n; i++) {
            order[i] = i;
        }
        // Arrays.sort on objects is a stable merge sort: ties keep input order, so the result is deterministic.
        Arrays.sort(order, Comparator.comparingDouble(i -> samples.get(i).difficulty()));

        final byte[][] encoded = new byte[n][];
        long totalBytes = 0;
        for (int i = 0; i < n; i++) {
            encoded[i] = encodeWithNewline(samples.get(order[i]).text());
            totalBytes += encoded[i].length;
        }
        if (totalBytes > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException("dataset " + source + " has " + totalBytes
                    + " bytes; at most 2 GiB fit in one dataset, split the data into smaller files");
        }
        final byte[] bytes = new byte[(int) totalBytes];
        final int[] offsets = new int[n + 1];
        final double[] difficulty = new double[n];
        final int[] domainIndex = new int[n];
        final int[] answerChar = new int[n];
        final int[] answerByte = new int[n];
        int at = 0;
        for (int i = 0; i < n; i++) {
            final Sample s = samples.get(order[i]);
            offsets[i] = at;
            System.arraycopy(encoded[i], 0, bytes, at, encoded[i].length);
            at += encoded[i].length;
            difficulty[i] = s.difficulty();
            domainIndex[i] = domainIds.get(s.domain());
            answerChar[i] = s.answerStart();
            answerByte[i] = s.answerStart() < 0 ? -1
                    : s.text().substring(0, s.answerStart()).getBytes(StandardCharsets.UTF_8).length;
        }
        offsets[n] = at;
        return new Dataset(source, new ArrayList<>(domainIds.keySet()), skipped, bytes, offsets, difficulty,
                domainIndex, answerChar, answerByte);
    }

    /** The built-in generator's samples (see {@link BuiltinConfig} for the domains and their difficulty). */
    public static Dataset builtin(final BuiltinConfig config) {
        return of(config.toString(), BuiltinGenerator.generate(config));
    }

    /**
     * Samples from a JSONL file, one JSON object per line: {@code {"text": "3+4=7", "difficulty": 0.1,
     * "domain": "arith", "answer_start": 4}} ({@code answer_start} optional), or {@code {"prompt": "3+4=",
     * "answer": "7", "difficulty": 0.1, "domain": "arith"}} (the text is prompt + answer, the answer checkable).
     * Other fields are ignored; blank lines are skipped.
     *
     * @param skipBad skip malformed lines and count them ({@link #skippedCount()}) instead of failing
     * @throws DataFormatException on an unreadable or empty file, or a bad line when {@code skipBad} is false
     */
    public static Dataset fromJsonl(final Path file, final boolean skipBad) {
        return DatasetReader.readJsonl(file, skipBad);
    }

    /**
     * Samples from a plain UTF-8 text file: each non-blank line is one sample of domain {@code "text"}, without
     * an answer. Difficulty is the line's length percentile in the file: the share of the other lines that are
     * strictly shorter in UTF-8 bytes, so the shortest lines are 0, the longest 1, and difficulty ranges select
     * fixed shares of the data (DeepSpeed's {@code difficulty_type: percentile}).
     *
     * @param skipBad skip lines that are not valid UTF-8 text and count them instead of failing
     * @throws DataFormatException on an unreadable or empty file, or a bad line when {@code skipBad} is false
     */
    public static Dataset fromText(final Path file, final boolean skipBad) {
        return DatasetReader.readText(file, skipBad);
    }

    /** Number of samples. */
    public int size() {
        return difficulty.length;
    }

    /** Sample {@code i} in difficulty order, decoded (allocates: not for the hot path). */
    public Sample sample(final int i) {
        final String text = new String(bytes, offsets[i], offsets[i + 1] - offsets[i], StandardCharsets.UTF_8);
        return new Sample(text, difficulty[i], domains.get(domainIndex[i]), answerStartChar[i]);
    }

    /** Difficulty of sample {@code i}; non-decreasing in {@code i}. */
    public double difficulty(final int i) {
        return difficulty[i];
    }

    /** Index into {@link #domains()} of sample {@code i}. */
    public int domainIndex(final int i) {
        return domainIndex[i];
    }

    /** Length of sample {@code i} in bytes (tokens), including its final newline. */
    public int lengthBytes(final int i) {
        return offsets[i + 1] - offsets[i];
    }

    /** Byte {@code j} of sample {@code i}, as a token 0..255. */
    public int token(final int i, final int j) {
        return bytes[offsets[i] + j] & 0xFF;
    }

    /** Byte (token) index where sample {@code i}'s answer starts, or -1 if it has none. */
    public int answerStartByte(final int i) {
        return answerStartByte[i];
    }

    /** Domain names, in order of first appearance in the source; subsets keep their parent's list. */
    public List<String> domains() {
        return domains;
    }

    /** Where the samples came from (a file path or the generator config), for logs and provenance. */
    public String source() {
        return source;
    }

    /** Bad samples skipped while reading with {@code skipBad} (0 otherwise). */
    public int skippedCount() {
        return skipped;
    }

    /**
     * A 64-bit hash of every sample's bytes, difficulty and domain, in order: equal fingerprints mean the
     * scheduler draws the same token stream from both datasets. Stored in {@link CurriculumState}.
     */
    public long fingerprint() {
        return fingerprint;
    }

    /** First index whose difficulty is {@code >= d} ({@link #size()} if none). */
    public int lowerBound(final double d) {
        return firstIndexAbove(d, false);
    }

    /** First index whose difficulty is {@code > d} ({@link #size()} if none): samples {@code [0, upperBound(d))} have difficulty {@code <= d}. */
    public int upperBound(final double d) {
        return firstIndexAbove(d, true);
    }

    /** Binary search over the sorted difficulties: the first index with difficulty > d, or >= d when !skipEqual. */
    private int firstIndexAbove(final double d, final boolean skipEqual) {
        int lo = 0;
        int hi = difficulty.length;
        while (lo < hi) {
            final int mid = (lo + hi) >>> 1;
            if (difficulty[mid] < d || skipEqual && difficulty[mid] == d) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        return lo;
    }

    /** The held-out {@link #HELD_OUT_FRACTION} of the samples, for evaluation. */
    public Dataset heldOut() {
        return heldOut(HELD_OUT_FRACTION);
    }

    /** The samples {@link #heldOut()} does not hold out. */
    public Dataset training() {
        return training(HELD_OUT_FRACTION);
    }

    /** Samples whose text hash falls in the first {@code fraction} of the hash range; disjoint from {@link #training(double)}. */
    public Dataset heldOut(final double fraction) {
        return split(fraction, true);
    }

    /** The complement of {@link #heldOut(double)} for the same fraction. */
    public Dataset training(final double fraction) {
        return split(fraction, false);
    }

    private Dataset split(final double fraction, final boolean heldOut) {
        if (!(fraction >= 0.0 && fraction <= 1.0)) {
            throw new IllegalArgumentException("fraction=" + fraction + " must be in [0,1]");
        }
        final int n = size();
        final boolean[] keep = new boolean[n];
        int count = 0;
        int byteCount = 0;
        for (int i = 0; i < n; i++) {
            final long h = SplitMix64.hash(SPLIT_SEED, bytes, offsets[i], lengthBytes(i));
            final double u = (h >>> 11) * 0x1.0p-53; // u: uniform in [0,1) over distinct texts
            keep[i] = (u < fraction) == heldOut;
            if (keep[i]) {
                count++;
                byteCount += lengthBytes(i);
            }
        }
        final byte[] b = new byte[byteCount];
        final int[] off = new int[count + 1];
        final double[] d = new double[count];
        final int[] dom = new int[count];
        final int[] ac = new int[count];
        final int[] ab = new int[count];
        int j = 0;
        int at = 0;
        for (int i = 0; i < n; i++) {
            if (keep[i]) {
                off[j] = at;
                System.arraycopy(bytes, offsets[i], b, at, lengthBytes(i));
                at += lengthBytes(i);
                d[j] = difficulty[i];
                dom[j] = domainIndex[i];
                ac[j] = answerStartChar[i];
                ab[j] = answerStartByte[i];
                j++;
            }
        }
        off[count] = at;
        final String name = source + (heldOut ? " held-out " : " training ") + fraction;
        return new Dataset(name, domains, skipped, b, off, d, dom, ac, ab);
    }

    private long computeFingerprint() {
        long h = SplitMix64.mix(size());
        for (int i = 0; i < size(); i++) {
            h = SplitMix64.mix(h ^ SplitMix64.hash(i, bytes, offsets[i], lengthBytes(i)));
            h = SplitMix64.mix(h ^ Double.doubleToLongBits(difficulty[i]));
            h = SplitMix64.mix(h ^ domains.get(domainIndex[i]).hashCode() ^ ((long) answerStartByte[i] << 32));
        }
        return h;
    }

    private static byte[] encodeWithNewline(final String text) {
        return (text.endsWith("\n") ? text : text + "\n").getBytes(StandardCharsets.UTF_8);
    }

    @Override
    public String toString() {
        return "Dataset[" + source + ", " + size() + " samples, domains=" + domains + ", skipped=" + skipped + "]";
    }
}
