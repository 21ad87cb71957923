package io.moeflow.launcher.report;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import javax.imageio.ImageIO;

import org.knowm.xchart.CategoryChart;
import org.knowm.xchart.CategoryChartBuilder;
import org.knowm.xchart.style.Styler;

/** Draws {@code moeflow bench scaling}'s tokens/s per configuration as a bar chart (PNG). */
public final class ScalingChart {
    private ScalingChart() {
    }

    /** One bar: a configuration and its tokens/s (NaN: did not run). */
    public record Bar(String label, double tokensPerSecond) {
    }

    /** Writes the chart to {@code file}, creating its directory. */
    public static void write(final String title, final List<Bar> bars, final Path file) {
        final CategoryChart chart = new CategoryChartBuilder().width(900).height(450).title(title)
            .xAxisTitle("configuration").yAxisTitle("tokens/s (the whole job)").build();
        chart.getStyler().setLegendVisible(false);
        chart.getStyler().setLabelsVisible(true);
        chart.getStyler().setXAxisLabelRotation(15);
        chart.getStyler().setLegendPosition(Styler.LegendPosition.InsideNW);
        final List<Bar> shown = bars.stream().filter(b -> !Double.isNaN(b.tokensPerSecond())).toList();
        if (shown.isEmpty()) {
            return;
        }
        chart.addSeries("tokens/s", shown.stream().map(Bar::label).toList(), shown.stream().map(b -> (double) Math.round(b.tokensPerSecond())).toList());
        try {
            if (file.toAbsolutePath().getParent() != null) {
                Files.createDirectories(file.toAbsolutePath().getParent());
            }
            ImageIO.write(RunCharts.stack(List.of(chart)), "png", file.toFile());
        } catch (final IOException e) {
            throw new UncheckedIOException("cannot write the chart " + file + ": " + e.getMessage(), e);
        }
    }
}
