package io.moeflow.trainer;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.SplittableRandom;

import io.moeflow.trainer.model.MoeModel;

/**
 * Samples text from a byte-level model: temperature and top-k sampling, or greedy decoding at
 * temperature 0. The context is the last T tokens (a sliding window) when the text outgrows T.
 */
public final class TextGenerator {
    private final MoeModel model;
    private final SplittableRandom random;
    private final float[] logits;
    private final double[] probs;
    private final Integer[] order;

    /** @param seed makes sampling reproducible */
    public TextGenerator(final MoeModel model, final long seed) {
        this.model = model;
        this.random = new SplittableRandom(seed);
        this.logits = new float[model.config().vocabSize()];
        this.probs = new double[logits.length];
        this.order = new Integer[logits.length];
    }

    /**
     * Continues {@code prompt}.
     *
     * @param maxNewTokens how many bytes to add at most
     * @param temperature  0 = greedy; 1 = the model's distribution; higher = flatter
     * @param topK         sample among the k most likely bytes only (0 = all)
     * @param stopAtNewline stop after the first generated '\n'
     * @return the generated continuation (without the prompt), decoded as UTF-8
     */
    public String generate(final String prompt, final int maxNewTokens, final double temperature, final int topK,
                           final boolean stopAtNewline) {
        final int[] tokens = generateTokens(prompt, maxNewTokens, temperature, topK, stopAtNewline);
        final byte[] bytes = new byte[tokens.length];
        for (int i = 0; i < tokens.length; i++) {
            bytes[i] = (byte) tokens[i];
        }
        return new String(bytes, StandardCharsets.UTF_8);
    }

    /** Like {@link #generate} but returns the generated token ids (bytes 0..255 for a byte-level model). */
    public int[] generateTokens(final String prompt, final int maxNewTokens, final double temperature, final int topK,
                                final boolean stopAtNewline) {
        if (temperature < 0 || !Double.isFinite(temperature)) {
            throw new IllegalArgumentException("temperature=" + temperature + " must be a finite number >= 0");
        }
        if (topK < 0) {
            throw new IllegalArgumentException("topK=" + topK + " must be >= 0 (0 = no limit)");
        }
        final int seqLen = model.config().seqLen();
        final byte[] promptBytes = prompt.getBytes(StandardCharsets.UTF_8);
        final int[] text = new int[promptBytes.length + maxNewTokens];
        for (int i = 0; i < promptBytes.length; i++) {
            text[i] = promptBytes[i] & 0xff;
        }
        int length = promptBytes.length;
        final int[] window = new int[seqLen];
        for (int n = 0; n < maxNewTokens; n++) {
            final int start = Math.max(0, length - seqLen);
            final int windowLength = length - start;
            System.arraycopy(text, start, window, 0, windowLength);
            if (windowLength == 0) {
                window[0] = '\n'; // an empty prompt starts as if after a sample boundary
            }
            model.logits(window, Math.max(1, windowLength), logits);
            final int next = temperature == 0 ? Evaluator.argmax(logits) : sample(temperature, topK);
            text[length++] = next;
            if (stopAtNewline && next == '\n') {
                break;
            }
        }
        return Arrays.copyOfRange(text, promptBytes.length, length);
    }

    private int sample(final double temperature, final int topK) {
        final int v = logits.length;
        double max = Double.NEGATIVE_INFINITY;
        for (final float l : logits) {
            max = Math.max(max, l);
        }
        for (int i = 0; i < v; i++) {
            probs[i] = Math.exp((logits[i] - max) / temperature);
            order[i] = i;
        }
        if (topK > 0 && topK < v) {
            Arrays.sort(order, (a, b) -> Double.compare(probs[b], probs[a]));
            for (int r = topK; r < v; r++) {
                probs[order[r]] = 0;
            }
        }
        double total = 0;
        for (final double p : probs) {
            total += p;
        }
        double u = random.nextDouble() * total;
        for (int i = 0; i < v; i++) {
            u -= probs[i];
            if (u <= 0 && probs[i] > 0) {
                return i;
            }
        }
        return Evaluator.argmax(logits);
    }
}
