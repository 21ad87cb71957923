package io.moeflow.trainer;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import io.moeflow.curriculum.Dataset;
import io.moeflow.trainer.model.MoeModel;

/**
 * Evaluates a model on held-out samples, per domain: the mean next-token cross-entropy over the
 * domain's samples, and exact-match accuracy on samples with a checkable answer (greedy decoding
 * of the answer after its prompt must reproduce it byte for byte, up to the newline).
 * Accuracy is also split by difficulty band: easy [0, 0.3), medium [0.3, 0.7), hard [0.7, 1].
 */
public final class Evaluator {
    /** Upper bounds of the difficulty bands the accuracy is split into (the default curriculum's stages). */
    static final double[] BAND_LIMITS = {0.3, 0.7};
    static final String[] BAND_NAMES = {"easy", "medium", "hard"};
    private static final int NEWLINE = '\n';

    private final MoeModel model;
    private final int seqLen;
    private final float[] logits;
    private final int[] context;

    public Evaluator(final MoeModel model) {
        this.model = model;
        this.seqLen = model.config().seqLen();
        this.logits = new float[model.config().vocabSize()];
        this.context = new int[seqLen];
    }

    /** One domain's results. {@code correct[b]}/{@code answered[b]} per difficulty band b. */
    public record DomainResult(String domain, int samples, double loss, int[] answered, int[] correct) {
        public int answeredTotal() {
            return Arrays.stream(answered).sum();
        }

        public int correctTotal() {
            return Arrays.stream(correct).sum();
        }

        /** Exact-match accuracy over all answered samples, NaN if the domain has no checkable answers. */
        public double accuracy() {
            return answeredTotal() == 0 ? Double.NaN : correctTotal() / (double) answeredTotal();
        }

        public double accuracy(final int band) {
            return answered[band] == 0 ? Double.NaN : correct[band] / (double) answered[band];
        }
    }

    /**
     * Evaluates up to {@code maxSamplesPerDomain} samples of each domain, spread evenly over the
     * domain's difficulty range (the dataset is sorted by difficulty).
     */
    public List<DomainResult> evaluate(final Dataset heldOut, final int maxSamplesPerDomain) {
        final List<DomainResult> results = new ArrayList<>();
        final List<String> domains = heldOut.domains();
        for (int d = 0; d < domains.size(); d++) {
            final int[] chosen = choose(heldOut, d, maxSamplesPerDomain);
            if (chosen.length == 0) {
                continue;
            }
            final double loss = meanLoss(heldOut, chosen);
            final int[] answered = new int[BAND_NAMES.length];
            final int[] correct = new int[BAND_NAMES.length];
            for (final int i : chosen) {
                if (heldOut.answerStartByte(i) < 0) {
                    continue;
                }
                final int band = band(heldOut.difficulty(i));
                answered[band]++;
                if (answersCorrectly(heldOut, i)) {
                    correct[band]++;
                }
            }
            results.add(new DomainResult(domains.get(d), chosen.length, loss, answered, correct));
        }
        return results;
    }

    /**
     * Mean next-token cross-entropy over up to {@code maxSamples} held-out samples spread evenly over
     * the dataset (all domains, all difficulties): the validation loss logged during training. Loss
     * only, no generation, so it costs a few forward passes.
     */
    public double loss(final Dataset heldOut, final int maxSamples) {
        final int n = Math.min(maxSamples, heldOut.size());
        final int[] chosen = new int[n];
        for (int k = 0; k < n; k++) {
            chosen[k] = (int) ((long) k * heldOut.size() / n);
        }
        return meanLoss(heldOut, chosen);
    }

    static int band(final double difficulty) {
        int b = 0;
        while (b < BAND_LIMITS.length && difficulty >= BAND_LIMITS[b]) {
            b++;
        }
        return b;
    }

    /** Evenly spaced samples of domain {@code d}, so easy and hard ones are both represented. */
    private static int[] choose(final Dataset data, final int d, final int max) {
        final List<Integer> all = new ArrayList<>();
        for (int i = 0; i < data.size(); i++) {
            if (data.domainIndex(i) == d) {
                all.add(i);
            }
        }
        final int n = Math.min(max, all.size());
        final int[] chosen = new int[n];
        for (int k = 0; k < n; k++) {
            chosen[k] = all.get((int) ((long) k * all.size() / n));
        }
        return chosen;
    }

    /**
     * Mean cross-entropy over the samples' tokens: the samples are packed into rows of T+1 tokens
     * (as in training) and run through the model B rows at a time; row padding is not counted.
     */
    private double meanLoss(final Dataset data, final int[] samples) {
        final int rows = model.batchSize();
        final int rowLength = seqLen + 1;
        final int[] tokens = new int[rows * rowLength];
        final int[] filled = new int[rows];
        double sum = 0;
        long count = 0;
        int next = 0;
        int offset = 0; // resume point inside samples[next] when a sample was cut at a row end
        while (next < samples.length) {
            Arrays.fill(tokens, NEWLINE);
            Arrays.fill(filled, 0);
            for (int r = 0; r < rows && next < samples.length; r++) {
                int pos = 0;
                while (pos < rowLength && next < samples.length) {
                    final int i = samples[next];
                    final int length = data.lengthBytes(i);
                    final int n = Math.min(length - offset, rowLength - pos);
                    for (int j = 0; j < n; j++) {
                        tokens[r * rowLength + pos + j] = data.token(i, offset + j);
                    }
                    pos += n;
                    offset += n;
                    if (offset == length) {
                        next++;
                        offset = 0;
                    }
                }
                filled[r] = pos;
            }
            model.forward(tokens);
            final float[] losses = model.tokenLosses();
            for (int r = 0; r < rows; r++) {
                // Position t predicts token t+1 of the row: count it only when that token is real data.
                for (int t = 0; t + 1 < filled[r]; t++) {
                    sum += losses[r * seqLen + t];
                    count++;
                }
            }
        }
        return count == 0 ? Double.NaN : sum / count;
    }

    /** Greedy-decodes the answer after the sample's prompt and compares it byte for byte. */
    private boolean answersCorrectly(final Dataset data, final int i) {
        final int promptLength = data.answerStartByte(i);
        int answerEnd = promptLength;
        while (answerEnd < data.lengthBytes(i) && data.token(i, answerEnd) != NEWLINE) {
            answerEnd++;
        }
        final int answerLength = answerEnd - promptLength;
        if (promptLength == 0 || promptLength + answerLength + 1 > seqLen) {
            return false; // prompt and answer must fit in the context window
        }
        for (int j = 0; j < promptLength; j++) {
            context[j] = data.token(i, j);
        }
        int length = promptLength;
        // The answer plus the newline that ends it must come out exactly.
        for (int k = 0; k <= answerLength; k++) {
            model.logits(context, length, logits);
            final int predicted = argmax(logits);
            final int expected = k < answerLength ? data.token(i, promptLength + k) : NEWLINE;
            if (predicted != expected) {
                return false;
            }
            context[length++] = predicted;
        }
        return true;
    }

    static int argmax(final float[] values) {
        int best = 0;
        for (int v = 1; v < values.length; v++) {
            if (values[v] > values[best]) {
                best = v;
            }
        }
        return best;
    }
}
