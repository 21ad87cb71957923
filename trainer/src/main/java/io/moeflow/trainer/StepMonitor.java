package io.moeflow.trainer;

/**
 * Receives each step's measurements, on the training thread, right after the update. The
 * launcher uses it for the metrics file, the progress bar and the charts.
 */
@FunctionalInterface
public interface StepMonitor {
    /** Called once per completed step; {@code metrics} is reused, copy what you keep. */
    void onStep(StepMetrics metrics);

    /** A monitor that ignores everything (tests, benchmarks). */
    StepMonitor NONE = metrics -> { };
}
