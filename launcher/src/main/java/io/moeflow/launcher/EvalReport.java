package io.moeflow.launcher;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;

import io.moeflow.curriculum.Dataset;
import io.moeflow.curriculum.Sample;
import io.moeflow.trainer.Evaluator;
import io.moeflow.trainer.TextGenerator;
import io.moeflow.trainer.model.MoeModel;

/** Formats evaluation results and generated samples for people and for files. */
final class EvalReport {
    private EvalReport() {
    }

    /** The per-domain table: loss and exact-match accuracy, split by difficulty band. */
    static String table(final List<Evaluator.DomainResult> results) {
        final StringBuilder s = new StringBuilder();
        s.append(String.format("%-10s %8s %9s %9s %9s %9s %9s%n", "domain", "samples", "loss", "accuracy", "easy",
            "medium", "hard"));
        for (final Evaluator.DomainResult r : results) {
            s.append(String.format(Locale.ROOT, "%-10s %8d %9.3f %9s %9s %9s %9s%n", r.domain(), r.samples(), r.loss(),
                percent(r.accuracy(), r.answeredTotal()), percent(r.accuracy(0), r.answered()[0]),
                percent(r.accuracy(1), r.answered()[1]), percent(r.accuracy(2), r.answered()[2])));
        }
        s.append("loss: mean cross-entropy per token on held-out samples (nats); accuracy: exact match of the greedy "
            + "answer (easy < 0.3 <= medium < 0.7 <= hard difficulty)\n");
        return s.toString();
    }

    private static String percent(final double accuracy, final int answered) {
        return answered == 0 ? "-" : String.format(Locale.ROOT, "%.1f%%", 100 * accuracy);
    }

    static void writeJson(final List<Evaluator.DomainResult> results, final Path file) {
        final StringBuilder s = new StringBuilder("{\"domains\":[");
        for (int i = 0; i < results.size(); i++) {
            final Evaluator.DomainResult r = results.get(i);
            s.append(i == 0 ? "" : ",").append(String.format(Locale.ROOT,
                "{\"domain\":\"%s\",\"samples\":%d,\"loss\":%s,\"answered\":%d,\"correct\":%d,"
                    + "\"answered_by_band\":[%d,%d,%d],\"correct_by_band\":[%d,%d,%d]}",
                r.domain(), r.samples(), Double.isFinite(r.loss()) ? String.valueOf(r.loss()) : "null", r.answeredTotal(),
                r.correctTotal(), r.answered()[0], r.answered()[1], r.answered()[2], r.correct()[0], r.correct()[1],
                r.correct()[2]));
        }
        s.append("]}\n");
        try {
            Files.writeString(file, s, StandardCharsets.UTF_8);
        } catch (final IOException e) {
            throw new UncheckedIOException("cannot write " + file + ": " + e.getMessage(), e);
        }
    }

    /**
     * A few generations: for held-out samples with an answer, the prompt, what the model wrote
     * (greedy) and what was expected; spread over the domains and difficulties.
     */
    static String samples(final MoeModel model, final Dataset heldOut, final int count, final long seed) {
        final TextGenerator generator = new TextGenerator(model, seed);
        final StringBuilder s = new StringBuilder("samples (greedy; prompt -> model | expected):\n");
        int shown = 0;
        final int stride = Math.max(1, heldOut.size() / Math.max(1, count * 3));
        for (int i = 0; i < heldOut.size() && shown < count; i += stride) {
            final Sample sample = heldOut.sample(i);
            if (!sample.hasAnswer()) {
                continue;
            }
            final String got = generator.generate(sample.prompt(), sample.answer().length() + 8, 0, 0, true);
            s.append(String.format("  [%s %.2f] %s -> %s | %s%n", sample.domain(), sample.difficulty(),
                visible(sample.prompt()), visible(got.strip()), visible(sample.answer())));
            shown++;
        }
        return s.toString();
    }

    private static String visible(final String text) {
        return text.replace("\n", "\\n");
    }
}
