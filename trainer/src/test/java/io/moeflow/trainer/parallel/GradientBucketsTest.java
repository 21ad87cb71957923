package io.moeflow.trainer.parallel;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.List;
import java.util.concurrent.TimeUnit;

import io.moeflow.trainer.parallel.ParallelConfig.GradCompression;
import io.moeflow.transport.Communicator;
import io.moeflow.transport.CommunicatorConfig;
import io.moeflow.transport.inprocess.InProcessCluster;
import org.junit.jupiter.api.Test;

class GradientBucketsTest {
    private static final long TIMEOUT_NS = TimeUnit.SECONDS.toNanos(10);

    @Test
    void shouldCutBucketsFromTheEndOfTheSlabWithoutCrossingAGap() {
        try (InProcessCluster cluster = InProcessCluster.create(2)) {
            final List<Communicator> comms = cluster.communicators(CommunicatorConfig.DEFAULT);
            // reduced tensors [0,3000) [3000,5000) then a gap (a tensor reduced elsewhere) [5000,6000), then [6000,9000)
            final List<int[]> ranges = List.of(new int[] {0, 3000}, new int[] {3000, 2000}, new int[] {6000, 3000});
            final ParallelConfig config = new ParallelConfig(2, 0, 1, 4096 * 2, GradCompression.NONE); // 2048 floats
            final GradientBuckets b = new GradientBuckets(comms.get(0), new float[9000], ranges, config, TIMEOUT_NS);
            final int[][] expected = {{6952, 2048}, {6000, 952}, {2952, 2048}, {904, 2048}, {0, 904}};
            assertEquals(expected.length, b.count(), b.toString());
            for (int i = 0; i < expected.length; i++) {
                assertEquals(expected[i][0], b.start(i), "start of bucket " + i);
                assertEquals(expected[i][1], b.length(i), "length of bucket " + i);
            }
            comms.forEach(Communicator::close);
        }
    }

    @Test
    void shouldPlanNothingInOneProcess() {
        final GradientBuckets b = new GradientBuckets(null, new float[10], List.of(new int[] {0, 10}),
            ParallelConfig.SINGLE, TIMEOUT_NS);
        assertEquals(0, b.count());
        b.allReduceCompleted(0);
        b.await();
    }

    @Test
    void shouldAverageEachBucketOnceAndRefuseToWaitForBucketsNeverStarted() throws Exception {
        try (InProcessCluster cluster = InProcessCluster.create(2)) {
            final List<Communicator> comms = cluster.communicators(CommunicatorConfig.DEFAULT);
            final Thread[] threads = new Thread[2];
            final float[][] grads = new float[2][5000];
            final Throwable[] failure = new Throwable[2];
            for (int r = 0; r < 2; r++) {
                final int rank = r;
                threads[r] = new Thread(() -> {
                    try {
                        for (int i = 0; i < 5000; i++) {
                            grads[rank][i] = rank == 0 ? i : 3 * i;
                        }
                        final GradientBuckets b = new GradientBuckets(comms.get(rank), grads[rank],
                            List.of(new int[] {0, 4000}), new ParallelConfig(2, rank, 1, 4096, GradCompression.NONE),
                            TIMEOUT_NS);
                        // 1024-float buckets from the end: [2976, 4000) [1952, 2976) [928, 1952) [0, 928)
                        b.allReduceCompleted(3500); // no bucket lies wholly in [3500, end): none starts
                        assertThrows(IllegalStateException.class, b::await);
                        b.allReduceCompleted(2976);
                        b.allReduceCompleted(0);
                        b.await();
                    } catch (final Throwable t) {
                        failure[rank] = t;
                    }
                });
                threads[r].start();
            }
            for (final Thread t : threads) {
                t.join(30_000);
            }
            for (int r = 0; r < 2; r++) {
                if (failure[r] != null) {
                    throw new AssertionError("rank " + r, failure[r]);
                }
                for (int i = 0; i < 5000; i++) {
                    final float expected = i < 4000 ? 2 * i : (r == 0 ? i : 3 * i);
                    assertEquals(expected, grads[r][i], "rank " + r + " element " + i);
                }
            }
            comms.forEach(Communicator::close);
        }
    }
}
