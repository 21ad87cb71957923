package io.moeflow.launcher.report;

import java.awt.Color;
import java.awt.Graphics2D;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import javax.imageio.ImageIO;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.HeatMapChart;
import org.knowm.xchart.HeatMapChartBuilder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.XYSeries;
import org.knowm.xchart.internal.chartpart.Chart;
import org.knowm.xchart.style.markers.SeriesMarkers;

/**
 * Draws a run's PNG charts from its {@code metrics.jsonl}: {@code loss.png} (training loss per
 * step, coloured by curriculum stage, with a smoothed line and the uniform-guess baseline) and
 * {@code expert-load.png} (per layer, the share of routed tokens each expert received over time,
 * plus the max/mean load imbalance). Reading the file, not memory, means a resumed run's charts
 * cover the whole run.
 */
public final class RunCharts {
    /** Heat-map columns: the steps are averaged into at most this many buckets (each labelled by its last step). */
    private static final int LOAD_BUCKETS = 20;

    private RunCharts() {
    }

    /** One parsed metrics line: the fields the charts need. */
    record Row(long step, double loss, double ceLoss, double evalLoss, String stage, int[][] expertLoad) {
    }

    /** Writes {@code loss.png} and {@code expert-load.png} into {@code outDir}; returns the files written. */
    public static List<Path> render(final Path metricsFile, final Path outDir, final int vocabSize) {
        final List<Row> rows = read(metricsFile);
        final List<Path> written = new ArrayList<>();
        if (rows.isEmpty()) {
            return written;
        }
        try {
            final Path loss = outDir.resolve("loss.png");
            BitmapEncoder.saveBitmap(lossChart(rows, vocabSize), loss.toString(), BitmapEncoder.BitmapFormat.PNG);
            written.add(loss);
            final List<Chart<?, ?>> load = expertLoadCharts(rows);
            if (!load.isEmpty()) {
                final Path file = outDir.resolve("expert-load.png");
                ImageIO.write(stack(load), "png", file.toFile());
                written.add(file);
            }
        } catch (final IOException e) {
            throw new UncheckedIOException("cannot write the charts into " + outDir + ": " + e.getMessage(), e);
        }
        return written;
    }

    static List<Row> read(final Path metricsFile) {
        final List<Row> rows = new ArrayList<>();
        if (!Files.exists(metricsFile)) {
            return rows;
        }
        final JsonFactory json = new JsonFactory();
        try {
            for (final String text : Files.readAllLines(metricsFile)) {
                if (text.isBlank()) {
                    continue;
                }
                try (JsonParser p = json.createParser(text)) {
                    rows.add(parse(p));
                } catch (final IOException malformed) {
                    // A line cut short by a crash: the charts skip it.
                }
            }
        } catch (final IOException e) {
            throw new UncheckedIOException("cannot read " + metricsFile + ": " + e.getMessage(), e);
        }
        return rows;
    }

    private static Row parse(final JsonParser p) throws IOException {
        long step = 0;
        double loss = Double.NaN;
        double ce = Double.NaN;
        double eval = Double.NaN;
        String stage = "";
        int[][] load = new int[0][];
        p.nextToken();
        while (p.nextToken() == JsonToken.FIELD_NAME) {
            final String name = p.currentName();
            final JsonToken t = p.nextToken();
            switch (name) {
                case "step" -> step = p.getLongValue();
                case "loss" -> loss = t == JsonToken.VALUE_NULL ? Double.NaN : p.getDoubleValue();
                case "ce_loss" -> ce = t == JsonToken.VALUE_NULL ? Double.NaN : p.getDoubleValue();
                case "eval_loss" -> eval = t == JsonToken.VALUE_NULL ? Double.NaN : p.getDoubleValue();
                case "stage_name" -> stage = p.getText();
                case "expert_load" -> load = parseLoad(p);
                default -> p.skipChildren();
            }
        }
        return new Row(step, loss, ce, eval, stage, load);
    }

    private static int[][] parseLoad(final JsonParser p) throws IOException {
        final List<int[]> layers = new ArrayList<>();
        while (p.nextToken() == JsonToken.START_ARRAY) {
            final List<Integer> counts = new ArrayList<>();
            while (p.nextToken() != JsonToken.END_ARRAY) {
                counts.add(p.getIntValue());
            }
            layers.add(counts.stream().mapToInt(Integer::intValue).toArray());
        }
        return layers.toArray(new int[0][]);
    }

    private static XYChart lossChart(final List<Row> rows, final int vocabSize) {
        final XYChart chart = new XYChartBuilder().width(900).height(500)
            .title("Training loss").xAxisTitle("step").yAxisTitle("cross-entropy (nats/token)").build();
        chart.getStyler().setMarkerSize(3);
        chart.getStyler().setXAxisDecimalPattern("#");
        chart.getStyler().setXAxisTickMarkSpacingHint(120);
        chart.getStyler().setLegendPosition(org.knowm.xchart.style.Styler.LegendPosition.InsideNE);
        // One scatter series per curriculum stage, so stage switches show as colour changes.
        final Map<String, List<double[]>> byStage = new LinkedHashMap<>();
        for (final Row r : rows) {
            if (Double.isFinite(r.ceLoss())) {
                byStage.computeIfAbsent(r.stage().isEmpty() ? "train" : r.stage(), k -> new ArrayList<>())
                    .add(new double[] {r.step(), r.ceLoss()});
            }
        }
        for (final Map.Entry<String, List<double[]>> e : byStage.entrySet()) {
            final XYSeries s = chart.addSeries("stage " + e.getKey(), column(e.getValue(), 0), column(e.getValue(), 1));
            s.setXYSeriesRenderStyle(XYSeries.XYSeriesRenderStyle.Scatter);
        }
        // Exponential moving average of the loss, the line people actually read.
        final double[] steps = new double[rows.size()];
        final double[] ce = new double[rows.size()];
        for (int i = 0; i < rows.size(); i++) {
            steps[i] = rows.get(i).step();
            ce[i] = rows.get(i).ceLoss();
        }
        final XYSeries s = chart.addSeries("smoothed", steps, smooth(ce));
        s.setMarker(SeriesMarkers.NONE);
        s.setLineColor(Color.BLACK);
        final List<double[]> evals = new ArrayList<>();
        for (final Row r : rows) {
            if (Double.isFinite(r.evalLoss())) {
                evals.add(new double[] {r.step(), r.evalLoss()});
            }
        }
        if (!evals.isEmpty()) {
            final XYSeries held = chart.addSeries("held-out", column(evals, 0), column(evals, 1));
            held.setMarker(SeriesMarkers.DIAMOND);
            held.setLineColor(Color.RED);
            held.setMarkerColor(Color.RED);
        }
        final double uniform = Math.log(vocabSize);
        final XYSeries base = chart.addSeries(String.format("uniform guess ln %d = %.2f", vocabSize, uniform),
            new double[] {steps[0], steps[steps.length - 1]}, new double[] {uniform, uniform});
        base.setMarker(SeriesMarkers.NONE);
        base.setLineColor(Color.GRAY);
        return chart;
    }

    /** The charts one below the other in one image, each at its own size. */
    static BufferedImage stack(final List<Chart<?, ?>> charts) {
        final List<BufferedImage> images = new ArrayList<>();
        int width = 0;
        int height = 0;
        for (final Chart<?, ?> c : charts) {
            final BufferedImage image = BitmapEncoder.getBufferedImage(c);
            images.add(image);
            width = Math.max(width, image.getWidth());
            height += image.getHeight();
        }
        final BufferedImage all = new BufferedImage(width, height, BufferedImage.TYPE_INT_RGB);
        final Graphics2D g = all.createGraphics();
        g.setColor(Color.WHITE);
        g.fillRect(0, 0, width, height);
        int y = 0;
        for (final BufferedImage image : images) {
            g.drawImage(image, 0, y, null);
            y += image.getHeight();
        }
        g.dispose();
        return all;
    }

    private static List<Chart<?, ?>> expertLoadCharts(final List<Row> rows) {
        final List<Chart<?, ?>> charts = new ArrayList<>();
        final int[][] first = rows.get(0).expertLoad();
        final int layers = first.length;
        if (layers == 0 || first[0].length == 0) {
            return charts;
        }
        final int experts = first[0].length;
        final int buckets = Math.min(LOAD_BUCKETS, rows.size());
        final XYChart imbalance = new XYChartBuilder().width(900).height(300)
            .title("Load imbalance: busiest expert / mean (1 = perfectly balanced), smoothed").xAxisTitle("step")
            .yAxisTitle("max / mean").build();
        imbalance.getStyler().setXAxisDecimalPattern("#");
        imbalance.getStyler().setXAxisTickMarkSpacingHint(120);
        for (int l = 0; l < layers; l++) {
            final double[][] share = new double[buckets][experts];
            final int[] count = new int[buckets];
            final double[] steps = new double[rows.size()];
            final double[] ratio = new double[rows.size()];
            for (int i = 0; i < rows.size(); i++) {
                final int[] load = rows.get(i).expertLoad()[l];
                final int b = (int) ((long) i * buckets / rows.size());
                long total = 0;
                int max = 0;
                for (final int c : load) {
                    total += c;
                    max = Math.max(max, c);
                }
                for (int e = 0; e < experts; e++) {
                    share[b][e] += total == 0 ? 0 : 100.0 * load[e] / total;
                }
                count[b]++;
                steps[i] = rows.get(i).step();
                ratio[i] = total == 0 ? 1 : max / (total / (double) experts);
            }
            final HeatMapChart heat = new HeatMapChartBuilder().width(900).height(Math.max(260, 40 + 18 * experts))
                .title("Layer " + l + ": share of routed tokens per expert (%)").xAxisTitle("step").yAxisTitle("expert").build();
            heat.getStyler().setShowValue(false);
            heat.getStyler().setMin(0);
            heat.getStyler().setMax(Math.min(100, 300.0 / experts));
            heat.getStyler().setPlotContentSize(1.0);
            final List<Object> xs = new ArrayList<>();
            final List<Object> ys = new ArrayList<>();
            final List<Number[]> cells = new ArrayList<>();
            for (int b = 0; b < buckets; b++) {
                final int lastRowOfBucket = (int) Math.min(rows.size() - 1, ((long) (b + 1) * rows.size() - 1) / buckets);
                xs.add(Long.toString(rows.get(lastRowOfBucket).step())); // as text: no digit grouping, no crowding
                for (int e = 0; e < experts; e++) {
                    cells.add(new Number[] {b, e, count[b] == 0 ? 0 : share[b][e] / count[b]});
                }
            }
            for (int e = 0; e < experts; e++) {
                ys.add(e);
            }
            heat.addSeries("share", xs, ys, cells);
            charts.add(heat);
            final XYSeries s = imbalance.addSeries("layer " + l, steps, smooth(ratio));
            s.setMarker(SeriesMarkers.NONE);
        }
        charts.add(imbalance);
        return charts;
    }

    /** Exponential moving average over about 2% of the points (at least 10); non-finite points are skipped. */
    static double[] smooth(final double[] values) {
        final double[] out = new double[values.length];
        final double alpha = 2.0 / (1 + Math.max(10, values.length / 50));
        double ema = Double.NaN;
        for (int i = 0; i < values.length; i++) {
            final double v = values[i];
            ema = Double.isNaN(ema) ? v : Double.isFinite(v) ? ema + alpha * (v - ema) : ema;
            out[i] = ema;
        }
        return out;
    }

    private static double[] column(final List<double[]> points, final int index) {
        final double[] c = new double[points.size()];
        for (int i = 0; i < c.length; i++) {
            c[i] = points.get(i)[index];
        }
        return c;
    }
}
