package io.moeflow.launcher.report;

import java.awt.Color;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.XYSeries;
import org.knowm.xchart.style.markers.SeriesMarkers;

/** The chart of {@code moeflow study curriculum}: held-out loss per step, one line per schedule (mean of seeds). */
public final class StudyChart {
    private StudyChart() {
    }

    /**
     * Draws the mean held-out loss curve of each schedule (curves of one schedule share their steps) and the target.
     *
     * @param curves per schedule name, per seed, the (step, held-out loss) points
     * @return the PNG written
     */
    public static Path render(final Map<String, List<List<double[]>>> curves, final double target, final Path png,
                              final String title) {
        final XYChart chart = new XYChartBuilder().width(900).height(500).title(title).xAxisTitle("step")
            .yAxisTitle("held-out cross-entropy (nats/token)").build();
        chart.getStyler().setXAxisDecimalPattern("#");
        chart.getStyler().setLegendPosition(org.knowm.xchart.style.Styler.LegendPosition.InsideNE);
        double first = Double.POSITIVE_INFINITY;
        double last = 0;
        for (final Map.Entry<String, List<List<double[]>>> e : curves.entrySet()) {
            final List<double[]> base = e.getValue().get(0);
            final double[] steps = new double[base.size()];
            final double[] loss = new double[base.size()];
            for (int i = 0; i < base.size(); i++) {
                steps[i] = base.get(i)[0];
                double sum = 0;
                for (final List<double[]> seed : e.getValue()) {
                    sum += seed.get(i)[1];
                }
                loss[i] = sum / e.getValue().size();
            }
            first = Math.min(first, steps[0]);
            last = Math.max(last, steps[steps.length - 1]);
            final XYSeries s = chart.addSeries(e.getKey(), steps, loss);
            s.setMarker(SeriesMarkers.CIRCLE);
        }
        final XYSeries t = chart.addSeries(String.format("target %.3f", target), new double[] {first, last},
            new double[] {target, target});
        t.setMarker(SeriesMarkers.NONE);
        t.setLineColor(Color.GRAY);
        try {
            BitmapEncoder.saveBitmap(chart, png.toString(), BitmapEncoder.BitmapFormat.PNG);
        } catch (final IOException e) {
            throw new UncheckedIOException("cannot write " + png, e);
        }
        return png;
    }
}
