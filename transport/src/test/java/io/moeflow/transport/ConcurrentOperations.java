package io.moeflow.transport;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;

import io.moeflow.transport.inprocess.InProcessCluster;

/**
 * The lanes scenario, shared by the in-process and the Aeron tests: ranks 0..p-2 queue eight 4 MiB
 * all-reduces on the job-wide group; then every rank runs an urgent all-to-all (the job-wide
 * group's urgent view) and an all-to-all on another group (a split of the world). Both must finish
 * before any of the queued all-reduces, which cannot finish yet because rank p-1 issues its own
 * only afterwards: an engine that runs one operation at a time would wait here until the timeout.
 * Every result must have the bits of the same operations run one after another.
 */
public final class ConcurrentOperations {
    public static final int BUCKETS = 8;
    /** 4 MiB of floats per all-reduce. */
    public static final int BUCKET_FLOATS = 1 << 20;
    private static final int TOKENS_PER_PEER = 3000;

    private ConcurrentOperations() {
    }

    /** What one rank ends with: the reduced buckets, then both all-to-alls' receive buffers. */
    public static float[][] run(final Communicator world) {
        final int p = world.size();
        final int rank = world.rank();
        final Communicator other = world.split(0, rank);
        final float[][] buckets = inputs(rank);
        final List<CollectiveHandle> handles = new ArrayList<>();
        if (rank < p - 1) {
            for (final float[] bucket : buckets) {
                handles.add(world.allReduceAsync(bucket, 0, BUCKET_FLOATS, ReduceOp.SUM, null));
            }
        }
        final float[] urgentRecv = allToAll(world.urgent(), 11);
        final float[] otherRecv = allToAll(other, 12);
        if (rank < p - 1) {
            for (int b = 0; b < BUCKETS; b++) {
                assertFalse(handles.get(b).isDone(), "rank " + rank + ": all-reduce " + b
                    + " finished before rank " + (p - 1) + " issued it");
            }
        } else {
            for (final float[] bucket : buckets) {
                handles.add(world.allReduceAsync(bucket, 0, BUCKET_FLOATS, ReduceOp.SUM, null));
            }
        }
        for (final CollectiveHandle h : handles) {
            h.await(TimeUnit.SECONDS.toNanos(60));
        }
        final float[][] out = Arrays.copyOf(buckets, BUCKETS + 2);
        out[BUCKETS] = urgentRecv;
        out[BUCKETS + 1] = otherRecv;
        return out;
    }

    /** The same operations, one after another, on a fresh in-process job. */
    public static float[][][] runSequentially(final int p, final CommunicatorConfig config) {
        final List<Communicator> comms = InProcessCluster.create(p).communicators(config);
        final float[][][] out = new float[p][][];
        RankThreads.run(p, 120_000, rank -> {
            final Communicator world = comms.get(rank);
            final Communicator other = world.split(0, rank);
            final float[][] buckets = inputs(rank);
            for (final float[] bucket : buckets) {
                world.allReduce(bucket, 0, BUCKET_FLOATS, ReduceOp.SUM);
            }
            final float[][] all = Arrays.copyOf(buckets, BUCKETS + 2);
            all[BUCKETS] = allToAll(world, 11);
            all[BUCKETS + 1] = allToAll(other, 12);
            out[rank] = all;
            world.close();
        });
        return out;
    }

    /** Asserts that every rank's results have the sequential run's bits. */
    public static void assertSameBits(final float[][][] expected, final float[][][] actual) {
        for (int r = 0; r < expected.length; r++) {
            for (int i = 0; i < expected[r].length; i++) {
                assertArrayEquals(expected[r][i], actual[r][i], "rank " + r + (i < BUCKETS ? " bucket " + i
                    : i == BUCKETS ? " urgent all-to-all" : " all-to-all of the other group"));
            }
        }
    }

    private static float[][] inputs(final int rank) {
        final float[][] buckets = new float[BUCKETS][];
        for (int b = 0; b < BUCKETS; b++) {
            buckets[b] = RankThreads.values(100 + b, rank, BUCKET_FLOATS);
        }
        return buckets;
    }

    private static float[] allToAll(final Communicator c, final long seed) {
        final int p = c.size();
        final int[] counts = new int[p];
        Arrays.fill(counts, TOKENS_PER_PEER);
        final float[] send = RankThreads.values(seed, c.rank(), p * TOKENS_PER_PEER);
        final float[] recv = new float[p * TOKENS_PER_PEER];
        c.allToAll(send, 0, counts, recv, 0, counts, null);
        return recv;
    }
}
