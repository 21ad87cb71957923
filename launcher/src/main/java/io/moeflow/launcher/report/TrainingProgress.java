package io.moeflow.launcher.report;

import java.io.PrintStream;
import java.time.Duration;
import java.util.function.LongSupplier;

import io.moeflow.trainer.StepMetrics;
import me.tongfei.progressbar.ProgressBar;
import me.tongfei.progressbar.ProgressBarBuilder;
import me.tongfei.progressbar.ProgressBarStyle;

/**
 * Shows training progress: step, loss, tokens/s, curriculum stage and ETA. On a terminal it is a
 * live progress bar (me.tongfei progressbar, on stderr); in a log or CI (no console) it prints one
 * plain line every few percent or {@link #LOG_INTERVAL_NS}, whichever comes first, to stdout.
 */
public final class TrainingProgress implements AutoCloseable {
    /** In logs, at most one line per this many nanoseconds unless 5% of the run passed. */
    static final long LOG_INTERVAL_NS = 15_000_000_000L;
    /** The bar's message is rebuilt at most this often: it is the only per-step string work. */
    private static final long BAR_MESSAGE_INTERVAL_NS = 200_000_000L;

    private final long totalSteps;
    private final long firstStep;
    private final ProgressBar bar;
    private final PrintStream log;
    private final LongSupplier clockNs;
    private final long startNs;
    private long lastPrintNs;
    private long lastPrintStep;
    /** Tokens consumed when the last line or bar message was shown: tokens/s is shown over the time since. */
    private long lastPrintTokens = -1;

    /**
     * @param firstStep the step the run starts from (non-zero after a resume)
     * @param interactive draw a live bar (true on a terminal) or print plain lines to {@code log}
     */
    public TrainingProgress(final long firstStep, final long totalSteps, final boolean interactive, final PrintStream log) {
        this(firstStep, totalSteps, interactive, log, System::nanoTime);
    }

    /** With the clock given (tests). */
    TrainingProgress(final long firstStep, final long totalSteps, final boolean interactive, final PrintStream log,
                     final LongSupplier clockNs) {
        this.clockNs = clockNs;
        this.startNs = clockNs.getAsLong();
        this.totalSteps = totalSteps;
        this.firstStep = firstStep;
        this.log = log;
        this.lastPrintStep = firstStep;
        this.bar = interactive
            ? new ProgressBarBuilder().setTaskName("train").setInitialMax(totalSteps).startsFrom(firstStep, Duration.ZERO)
                .setStyle(ProgressBarStyle.COLORFUL_UNICODE_BLOCK).setUpdateIntervalMillis(250).setMaxRenderedLength(140)
                .build()
            : null;
    }

    /** Records a finished step. */
    public void update(final StepMetrics m) {
        final long now = clockNs.getAsLong();
        if (bar != null) {
            bar.stepTo(m.step);
            if (now - lastPrintNs >= BAR_MESSAGE_INTERVAL_NS || m.step == totalSteps) {
                bar.setExtraMessage(String.format("loss %.3f | %s tok/s | stage %s", m.loss, compact(windowRate(m, now)), m.stageName));
                lastPrintNs = now;
                lastPrintTokens = m.tokensConsumed;
            }
            return;
        }
        final long fivePercent = Math.max(1, totalSteps / 20);
        if (m.step - lastPrintStep >= fivePercent || now - lastPrintNs >= LOG_INTERVAL_NS || m.step == totalSteps
            || m.step == firstStep + 1) {
            log.println(line(m, now, windowRate(m, now)));
            lastPrintNs = now;
            lastPrintStep = m.step;
            lastPrintTokens = m.tokensConsumed;
        }
    }

    String line(final StepMetrics m, final long nowNs, final double tokensPerSecond) {
        return String.format("step %d/%d (%d%%)  loss %.4f  ce %.4f  lr %.2e  stage %s  %s tok/s  ETA %s",
            m.step, totalSteps, 100 * m.step / Math.max(1, totalSteps), m.loss, m.crossEntropy, m.lr, m.stageName,
            compact(tokensPerSecond), eta(m.step, nowNs));
    }

    /**
     * Tokens per second since the previous line or bar message, evaluations and checkpoint saves included
     * (one step right after a background save can take 5x longer while the writer has a core, which
     * said little about the run when this showed that step alone); the step's own rate for the first line.
     */
    double windowRate(final StepMetrics m, final long nowNs) {
        final long tokens = m.tokensConsumed - lastPrintTokens;
        if (lastPrintTokens < 0 || tokens <= 0 || nowNs <= lastPrintNs) {
            return m.tokensPerSecond;
        }
        return tokens / ((nowNs - lastPrintNs) / 1e9);
    }

    /** Remaining time at the average pace of this process so far. */
    String eta(final long step, final long nowNs) {
        final long done = step - firstStep;
        if (done < 3) {
            return "?"; // the first steps include JIT warm-up: an estimate from them is far off
        }
        final long remainingNs = (long) ((nowNs - startNs) / (double) done * (totalSteps - step));
        return duration(remainingNs);
    }

    static String duration(final long ns) {
        final long s = Math.max(0, ns / 1_000_000_000L);
        if (s >= 3600) {
            return String.format("%dh%02dm", s / 3600, (s % 3600) / 60);
        }
        return s >= 60 ? String.format("%dm%02ds", s / 60, s % 60) : s + "s";
    }

    static String compact(final double v) {
        if (v >= 1e6) {
            return String.format("%.2fM", v / 1e6);
        }
        return v >= 1e3 ? String.format("%.1fk", v / 1e3) : String.format("%.0f", v);
    }

    @Override
    public void close() {
        if (bar != null) {
            bar.close();
        }
    }
}
