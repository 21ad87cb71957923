package io.moeflow.transport;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import io.moeflow.transport.fp8.Fp8Format;
import io.moeflow.transport.inprocess.InProcessCluster;

/** FP8-compressed collectives: error bounds, identical bits on every rank, error feedback and wire bytes. */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class Fp8CollectivesTest {
    static final CommunicatorConfig CONFIG = CommunicatorConfig.DEFAULT.withOpTimeoutNs(TimeUnit.SECONDS.toNanos(10));

    @ParameterizedTest(name = "p={0} {1}")
    @CsvSource({"2,E4M3,0.05", "3,E4M3,0.05", "4,E5M2,0.10"})
    void shouldAllReduceWithinTheFormatsErrorAndIdenticallyOnEveryRank(final int p, final Fp8Format format,
                                                                        final double maxRmsRelativeError) {
        final int n = 10_000;
        final List<Communicator> comms = InProcessCluster.create(p, 1 << 16, 1024).communicators(CONFIG);
        final float[][] inputs = new float[p][];
        for (int r = 0; r < p; r++) {
            inputs[r] = RankThreads.values(17, r, n);
        }
        final float[][] outputs = new float[p][];
        RankThreads.run(p, 30_000, rank -> {
            final float[] buf = inputs[rank].clone();
            comms.get(rank).allReduce(buf, 0, n, ReduceOp.SUM, Fp8Compression.of(format));
            outputs[rank] = buf;
        });
        for (int r = 1; r < p; r++) {
            assertArrayEquals(outputs[0], outputs[r], "rank " + r + " holds other bits than rank 0");
        }
        final double[] exact = ReferenceCollectives.exactSum(inputs);
        double errorSquares = 0;
        double valueSquares = 0;
        for (int i = 0; i < n; i++) {
            errorSquares += (outputs[0][i] - exact[i]) * (outputs[0][i] - exact[i]);
            valueSquares += exact[i] * exact[i];
        }
        final double rmsRelative = Math.sqrt(errorSquares / valueSquares);
        assertTrue(rmsRelative < maxRmsRelativeError, "RMS relative error " + rmsRelative);
        assertTrue(rmsRelative > 1e-4, "values were really quantized (error " + rmsRelative + ")");
    }

    @Test
    void shouldKeepTheRunningSumUnbiasedWithErrorFeedback() {
        final int p = 2;
        final int n = 512;
        final int steps = 200;
        final List<Communicator> comms = InProcessCluster.create(p).communicators(CONFIG);
        final double[][] drift = new double[2][n]; // [with feedback?][element]: sum over steps of (output - exact)
        final double[] worstSingleStep = new double[1];
        RankThreads.run(p, 60_000, rank -> {
            final float[] gradient = RankThreads.values(5, rank, n); // the same gradient every step: a bias shows up
            for (int mode = 0; mode < 2; mode++) {
                final Fp8Compression fp8 = mode == 0 ? Fp8Compression.of(Fp8Format.E4M3)
                    : Fp8Compression.withErrorFeedback(Fp8Format.E4M3, n);
                final double[] exact = ReferenceCollectives.exactSum(new float[][] {RankThreads.values(5, 0, n), RankThreads.values(5, 1, n)});
                final double[] sum = new double[n];
                for (int step = 0; step < steps; step++) {
                    final float[] buf = gradient.clone();
                    comms.get(rank).allReduce(buf, 0, n, ReduceOp.SUM, fp8);
                    for (int i = 0; i < n; i++) {
                        sum[i] += buf[i] - exact[i];
                        if (step == 0 && rank == 0 && mode == 0) {
                            worstSingleStep[0] = Math.max(worstSingleStep[0], Math.abs(buf[i] - exact[i]));
                        }
                    }
                }
                if (rank == 0) {
                    drift[mode] = sum;
                }
            }
        });
        double worstWithout = 0;
        double worstWith = 0;
        for (int i = 0; i < n; i++) {
            worstWithout = Math.max(worstWithout, Math.abs(drift[0][i]));
            worstWith = Math.max(worstWith, Math.abs(drift[1][i]));
        }
        // with feedback the accumulated error telescopes to the last residuals: a few single-step errors at most
        assertTrue(worstWith <= 4 * worstSingleStep[0], "drift with feedback " + worstWith + " vs one step " + worstSingleStep[0]);
        // without it the same rounding repeats every step and the drift grows with the number of steps
        assertTrue(worstWithout > 20 * worstWith, "drift without feedback " + worstWithout + ", with " + worstWith);
    }

    @Test
    void shouldSendAboutAQuarterOfTheBytes() {
        final int n = 1 << 18;
        final long[] bytes = new long[2];
        for (int mode = 0; mode < 2; mode++) {
            final List<Communicator> comms = InProcessCluster.create(2).communicators(CONFIG);
            final Fp8Compression compression = mode == 0 ? null : Fp8Compression.of(Fp8Format.E4M3);
            RankThreads.run(2, 30_000, rank -> comms.get(rank).allReduce(new float[n], 0, n, ReduceOp.SUM, compression));
            bytes[mode] = comms.get(0).counters().bytesSent();
        }
        final double ratio = (double) bytes[0] / bytes[1];
        assertTrue(ratio > 3.8 && ratio < 4.0, "float32 / fp8 wire bytes = " + ratio);
    }

    @Test
    void shouldReduceScatterGatherAndDispatchInFp8WithTheSameBitsEverywhere() {
        final int p = 3;
        final int count = 1000;
        final List<Communicator> comms = InProcessCluster.create(p, 1 << 16, 1024).communicators(CONFIG);
        final float[][] gathered = new float[p][];
        final float[][] dispatched = new float[p][];
        RankThreads.run(p, 30_000, rank -> {
            final Communicator c = comms.get(rank);
            final float[] buf = RankThreads.values(8, rank, p * count);
            c.reduceScatter(buf, 0, count, ReduceOp.AVERAGE, Fp8Compression.withErrorFeedback(Fp8Format.E4M3, p * count));
            c.allGather(buf, 0, count, Fp8Compression.of(Fp8Format.E4M3));
            gathered[rank] = buf;
            final int[] counts = {count, count, count};
            final float[] recv = new float[p * count];
            c.allToAll(RankThreads.values(9, rank, p * count), 0, counts, recv, 0, counts, Fp8Compression.of(Fp8Format.E5M2));
            dispatched[rank] = recv;
        });
        for (int r = 1; r < p; r++) {
            assertArrayEquals(gathered[0], gathered[r], "all-gather result of rank " + r);
        }
        // token dispatch: what rank 1 got from rank 0 is rank 0's block 1, quantized once
        final float[] sent = RankThreads.values(9, 0, p * count);
        for (int i = 0; i < count; i++) {
            assertEquals(sent[count + i], dispatched[1][i], Math.abs(sent[count + i]) * 0.126 + 1e-6);
        }
    }
}
