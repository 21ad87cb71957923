package io.moeflow.launcher.report;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import javax.imageio.ImageIO;

import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.XYSeries;
import org.knowm.xchart.internal.chartpart.Chart;
import org.knowm.xchart.style.lines.SeriesLines;
import org.knowm.xchart.style.markers.SeriesMarkers;

import io.moeflow.transport.bench.TransportBenchmark;

/**
 * Draws what {@code moeflow bench transport} printed as a PNG: bus bandwidth per message size with
 * the baselines measured in the same run as horizontal lines, and the median latency per size. It
 * reads the printed report (the workers print, the launcher draws), so the chart shows exactly the
 * figures of the table.
 */
public final class TransportBenchChart {
    /**
     * A table row: {@code size count redop algo iters time p50 algbw busbw wire}, then (optionally)
     * {@code off-time off-p50 off-busbw copy bound float[]% off%}.
     */
    private static final Pattern ROW = Pattern.compile(
        "^\\s*(\\d+)\\s+\\d+\\s+\\S+\\s+\\S+\\s+\\d+\\s+([\\d.]+)\\s+([\\d.]+)\\s+[\\d.]+\\s+([\\d.]+)\\s+\\d+"
            + "(?:\\s+[\\d.]+\\s+[\\d.]+\\s+([\\d.]+)\\s+[\\d.]+\\s+([\\d.]+)\\s+[\\d.]+%\\s+[\\d.]+%)?\\s*$");
    /** A measurement after the table: {@code #   label : 12.345 GB/s ...}. */
    private static final Pattern BASELINE = Pattern.compile("^#\\s+([^:]+?)\\s*:\\s+([\\d.]+) GB/s.*$");

    private TransportBenchChart() {
    }

    /**
     * One size of the sweep: mean (averaged over ranks) and rank 0's median time, float[] busbw; the
     * off-heap busbw and the memory bound are NaN in reports without them.
     */
    public record Row(long bytes, double meanUs, double p50Us, double busbwGbPerS, double offHeapBusbwGbPerS,
                      double boundGbPerS) {
    }

    /** The parsed report: title, sweep rows, and the GB/s lines after the table by label. */
    public record Report(String title, List<Row> rows, Map<String, Double> baselines) {
    }

    /** Reads the lines of a {@code moeflow bench transport} report. */
    public static Report parse(final List<String> lines) {
        String title = "moeflow bench transport";
        final List<Row> rows = new ArrayList<>();
        final Map<String, Double> baselines = new LinkedHashMap<>();
        for (final String line : lines) {
            if (line.startsWith(TransportBenchmark.REPORT_TITLE_PREFIX)) {
                title = line.substring(TransportBenchmark.REPORT_TITLE_PREFIX.length());
                continue;
            }
            final Matcher row = ROW.matcher(line);
            if (row.matches()) {
                rows.add(new Row(Long.parseLong(row.group(1)), Double.parseDouble(row.group(2)), Double.parseDouble(row.group(3)),
                    Double.parseDouble(row.group(4)), row.group(5) == null ? Double.NaN : Double.parseDouble(row.group(5)),
                    row.group(6) == null ? Double.NaN : Double.parseDouble(row.group(6))));
                continue;
            }
            final Matcher baseline = BASELINE.matcher(line);
            if (baseline.matches()) {
                baselines.put(baseline.group(1), Double.parseDouble(baseline.group(2)));
            }
        }
        return new Report(title, rows, baselines);
    }

    /**
     * Writes the chart of the report in {@code lines} to {@code file} (creating its directory).
     *
     * @return false if the lines hold no table row (nothing drawn)
     */
    public static boolean write(final List<String> lines, final Path file) {
        final Report report = parse(lines);
        if (report.rows().isEmpty()) {
            return false;
        }
        try {
            if (file.toAbsolutePath().getParent() != null) {
                Files.createDirectories(file.toAbsolutePath().getParent());
            }
            final List<Chart<?, ?>> charts = List.of(bandwidthChart(report), latencyChart(report));
            ImageIO.write(RunCharts.stack(charts), "png", file.toFile());
            return true;
        } catch (final IOException e) {
            throw new UncheckedIOException("cannot write the chart " + file + ": " + e.getMessage(), e);
        }
    }

    private static XYChart bandwidthChart(final Report report) {
        final XYChart chart = new XYChartBuilder().width(900).height(450).title(report.title())
            .xAxisTitle("message size").yAxisTitle("GB/s").build();
        styleSizeAxis(chart);
        final double[] x = log2Sizes(report.rows());
        final double[] busbw = report.rows().stream().mapToDouble(Row::busbwGbPerS).toArray();
        final XYSeries sweep = chart.addSeries("busbw, float[] (this run's sweep)", x, busbw);
        sweep.setMarker(SeriesMarkers.CIRCLE);
        if (report.rows().stream().noneMatch(r -> Double.isNaN(r.offHeapBusbwGbPerS()))) {
            chart.addSeries("busbw, off-heap", x, report.rows().stream().mapToDouble(Row::offHeapBusbwGbPerS).toArray())
                .setMarker(SeriesMarkers.DIAMOND);
            final XYSeries bound = chart.addSeries("memory bound (passes x copy bandwidth)", x,
                report.rows().stream().mapToDouble(Row::boundGbPerS).toArray());
            bound.setMarker(SeriesMarkers.NONE);
            bound.setLineStyle(SeriesLines.DOT_DOT);
        }
        final long largest = report.rows().get(report.rows().size() - 1).bytes();
        for (final Map.Entry<String, Double> b : report.baselines().entrySet()) {
            final XYSeries line = chart.addSeries(String.format("%s at %s: %.2f GB/s", b.getKey(), bytesLabel(largest), b.getValue()),
                new double[] {x[0], x[x.length - 1]}, new double[] {b.getValue(), b.getValue()});
            line.setMarker(SeriesMarkers.NONE);
            line.setLineStyle(SeriesLines.DASH_DASH);
        }
        return chart;
    }

    private static XYChart latencyChart(final Report report) {
        final XYChart chart = new XYChartBuilder().width(900).height(350).title("median time per operation (rank 0)")
            .xAxisTitle("message size").yAxisTitle("p50 (us, log scale)").build();
        styleSizeAxis(chart);
        chart.getStyler().setYAxisLogarithmic(true);
        chart.getStyler().setLegendVisible(false);
        final double[] p50 = report.rows().stream().mapToDouble(r -> Math.max(r.p50Us(), 0.01)).toArray();
        chart.addSeries("p50", log2Sizes(report.rows()), p50).setMarker(SeriesMarkers.CIRCLE);
        return chart;
    }

    private static void styleSizeAxis(final XYChart chart) {
        chart.getStyler().setLegendPosition(org.knowm.xchart.style.Styler.LegendPosition.InsideNW);
        chart.getStyler().setXAxisTickMarkSpacingHint(60);
        chart.setCustomXAxisTickLabelsFormatter(TransportBenchChart::sizeLabel);
    }

    private static double[] log2Sizes(final List<Row> rows) {
        return rows.stream().mapToDouble(r -> Math.log(r.bytes()) / Math.log(2)).toArray();
    }

    /** {@code 2^x} bytes as 8 B, 1 KiB, 64 MiB; empty between powers of two. */
    static String sizeLabel(final double log2Bytes) {
        final long exponent = Math.round(log2Bytes);
        if (Math.abs(log2Bytes - exponent) > 1e-6 || exponent < 0 || exponent > 62) {
            return "";
        }
        return bytesLabel(1L << exponent);
    }

    /** In the largest binary unit that divides it: 8 B, 1 KiB, 96 KiB, 64 MiB, 1000 B. */
    static String bytesLabel(final long bytes) {
        final String[] units = {"B", "KiB", "MiB", "GiB", "TiB"};
        long value = bytes;
        int unit = 0;
        while (unit < units.length - 1 && value >= 1024 && value % 1024 == 0) {
            value /= 1024;
            unit++;
        }
        return value + " " + units[unit];
    }
}
