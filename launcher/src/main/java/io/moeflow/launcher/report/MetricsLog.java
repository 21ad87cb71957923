package io.moeflow.launcher.report;

import java.io.BufferedWriter;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import io.moeflow.trainer.StepMetrics;

/**
 * {@code metrics.jsonl}: one JSON object per step with the fields {@code step}, {@code loss},
 * {@code ce_loss}, {@code aux_loss}, {@code z_loss}, {@code lr}, {@code stage}, {@code stage_name},
 * {@code max_difficulty}, {@code grad_norm}, {@code tokens_per_s}, {@code step_ms},
 * {@code tokens}, {@code dropped_tokens}, {@code ckpt_stall_ms}, {@code eval_loss} (held-out loss, null on steps
 * without evaluation) and {@code expert_load}
 * (one array of token counts per layer). A resumed run appends to the same file.
 */
public final class MetricsLog implements AutoCloseable {
    private static final Pattern STEP = Pattern.compile("^\\{\"step\":(\\d+)");
    private final BufferedWriter out;
    private final StringBuilder line = new StringBuilder(512);

    public MetricsLog(final Path file) {
        try {
            out = Files.newBufferedWriter(file, StandardCharsets.UTF_8, StandardOpenOption.CREATE, StandardOpenOption.APPEND);
        } catch (final IOException e) {
            throw new UncheckedIOException("cannot open the metrics file " + file + ": " + e.getMessage(), e);
        }
    }

    /**
     * Drops the lines of steps after {@code lastStep}: a run resumed from an older checkpoint
     * (after a crash) redoes those steps and writes them again. Atomic: a temporary file is moved
     * over the old one.
     */
    public static void truncateAfter(final Path file, final long lastStep) {
        if (!Files.exists(file)) {
            return;
        }
        try {
            final List<String> kept = new ArrayList<>();
            for (final String line : Files.readAllLines(file, StandardCharsets.UTF_8)) {
                final Matcher m = STEP.matcher(line);
                if (m.find() && Long.parseLong(m.group(1)) <= lastStep && line.endsWith("}")) {
                    kept.add(line);
                }
            }
            final Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
            Files.write(tmp, kept, StandardCharsets.UTF_8);
            Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        } catch (final IOException e) {
            throw new UncheckedIOException("cannot rewrite the metrics file " + file + ": " + e.getMessage(), e);
        }
    }

    /** Appends one line for this step; flushed so a crash loses at most the line being written. */
    public void append(final StepMetrics m) {
        final StringBuilder s = line;
        s.setLength(0);
        s.append("{\"step\":").append(m.step);
        number(s, "loss", m.loss);
        number(s, "ce_loss", m.crossEntropy);
        number(s, "aux_loss", m.auxLoss);
        number(s, "z_loss", m.zLoss);
        number(s, "lr", m.lr);
        s.append(",\"stage\":").append(m.stageIndex);
        s.append(",\"stage_name\":\"");
        escape(s, m.stageName);
        s.append('"');
        number(s, "max_difficulty", m.maxDifficulty);
        number(s, "grad_norm", m.gradNorm);
        number(s, "tokens_per_s", m.tokensPerSecond);
        number(s, "step_ms", m.stepTimeNs / 1e6);
        number(s, "grad_wait_ms", m.gradientWaitNs / 1e6);
        number(s, "moe_wait_ms", m.expertWaitNs / 1e6);
        s.append(",\"tokens\":").append(m.tokensConsumed);
        s.append(",\"dropped_tokens\":").append(m.droppedTokens);
        number(s, "ckpt_stall_ms", m.checkpointStallNs / 1e6);
        number(s, "eval_loss", m.evalLoss);
        s.append(",\"expert_load\":[");
        for (int l = 0; l < m.layers; l++) {
            s.append(l == 0 ? "[" : ",[");
            for (int e = 0; e < m.experts; e++) {
                if (e > 0) {
                    s.append(',');
                }
                s.append(m.expertLoad[l * m.experts + e]);
            }
            s.append(']');
        }
        s.append("]}\n");
        try {
            out.append(s);
            out.flush();
        } catch (final IOException e) {
            throw new UncheckedIOException("cannot write the metrics file: " + e.getMessage(), e);
        }
    }

    /** JSON has no NaN or Infinity: write them as null so every line stays parseable. */
    private static void number(final StringBuilder s, final String key, final double v) {
        s.append(",\"").append(key).append("\":");
        if (Double.isFinite(v)) {
            s.append(v);
        } else {
            s.append("null");
        }
    }

    private static void escape(final StringBuilder s, final String text) {
        for (int i = 0; i < text.length(); i++) {
            final char c = text.charAt(i);
            if (c == '"' || c == '\\') {
                s.append('\\').append(c);
            } else if (c < 0x20) {
                s.append(String.format("\\u%04x", (int) c));
            } else {
                s.append(c);
            }
        }
    }

    @Override
    public void close() {
        try {
            out.close();
        } catch (final IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
