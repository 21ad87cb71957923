/**
 * The training-speed benchmark ({@link io.moeflow.trainer.bench.TrainBenchmark}) and the peak-GEMM measurement it is
 * reported against ({@link io.moeflow.trainer.bench.PeakFlops}).
 */
package io.moeflow.trainer.bench;
