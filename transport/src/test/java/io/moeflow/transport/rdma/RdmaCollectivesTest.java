package io.moeflow.transport.rdma;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import io.moeflow.transport.Communicator;
import io.moeflow.transport.RankThreads;
import io.moeflow.transport.ReduceOp;
import io.moeflow.transport.ReferenceCollectives;

/**
 * The collectives over the RDMA protocol on in-memory verbs (1 KiB frames: frames up to 256 bytes
 * go by SEND, larger by RDMA WRITE with immediate; 4 credits per lane; completions interleaved
 * across queue pairs at random, seeded), against the references.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class RdmaCollectivesTest {
    @ParameterizedTest(name = "p={0} n={1} {2} seed={3}")
    @CsvSource({"2,1,SUM,1", "2,5000,SUM,2", "3,7,AVERAGE,3", "3,20000,SUM,4", "4,16385,SUM,5", "4,40,AVERAGE,6"})
    void shouldAllReduceToTheReferenceBits(final int p, final int n, final ReduceOp op, final long seed) {
        final List<Communicator> comms = RdmaTestJob.communicators(p, seed);
        final float[][] inputs = new float[p][];
        for (int r = 0; r < p; r++) {
            inputs[r] = RankThreads.values(42, r, n);
        }
        final float[] expected = RdmaTestJob.CONFIG.allReduceUsesRecursiveDoubling(n, false)
            ? ReferenceCollectives.recursiveDoublingAllReduce(inputs, op) : ReferenceCollectives.ringAllReduce(inputs, op);
        RankThreads.run(p, 60_000, rank -> {
            final float[] buf = inputs[rank].clone();
            comms.get(rank).allReduce(buf, 0, n, op);
            assertArrayEquals(expected, buf, "rank " + rank);
        });
        comms.forEach(Communicator::close);
    }

    @ParameterizedTest(name = "p={0} countPerRank={1}")
    @CsvSource({"2,300", "3,100", "4,1000"})
    void shouldAllGatherToTheReference(final int p, final int count) {
        final List<Communicator> comms = RdmaTestJob.communicators(p, 11);
        final float[][] inputs = new float[p][];
        for (int r = 0; r < p; r++) {
            inputs[r] = RankThreads.values(13, r, p * count);
        }
        final float[] expected = ReferenceCollectives.allGather(inputs, count);
        RankThreads.run(p, 60_000, rank -> {
            final float[] buf = inputs[rank].clone();
            comms.get(rank).allGather(buf, 0, count, null);
            assertArrayEquals(expected, buf, "rank " + rank);
        });
        comms.forEach(Communicator::close);
    }

    @ParameterizedTest(name = "p={0} n={1}")
    @CsvSource({"2,10", "3,30000", "4,7"})
    void shouldBroadcastFromEveryRoot(final int p, final int n) {
        final List<Communicator> comms = RdmaTestJob.communicators(p, 21);
        final float[][] inputs = new float[p][];
        for (int r = 0; r < p; r++) {
            inputs[r] = RankThreads.values(r, 99, n);
        }
        RankThreads.run(p, 60_000, rank -> {
            for (int root = 0; root < p; root++) {
                final float[] buf = rank == root ? inputs[root].clone() : new float[n];
                comms.get(rank).broadcast(buf, 0, n, root);
                assertArrayEquals(ReferenceCollectives.broadcast(inputs, root), buf, "root " + root);
            }
        });
        comms.forEach(Communicator::close);
    }

    @ParameterizedTest(name = "p={0}")
    @CsvSource({"2", "3", "4"})
    void shouldExchangeVariableCountsAllToAll(final int p) {
        final List<Communicator> comms = RdmaTestJob.communicators(p, 31);
        final int[][] sendCounts = new int[p][p];
        final float[][] sends = new float[p][];
        for (int r = 0; r < p; r++) {
            int total = 0;
            for (int j = 0; j < p; j++) {
                sendCounts[r][j] = (r * 7 + j * 13) % 5 == 0 ? 0 : 300 * ((r + 2 * j) % 4) + (r + j) % 3;
                total += sendCounts[r][j];
            }
            sends[r] = RankThreads.values(11, r, total);
        }
        RankThreads.run(p, 60_000, rank -> {
            final Communicator c = comms.get(rank);
            final int[] recvCounts = new int[p];
            final int[] ones = new int[p];
            Arrays.fill(ones, 1);
            c.allToAll(sendCounts[rank].clone(), 0, ones, recvCounts, 0, ones);
            final float[] expected = ReferenceCollectives.allToAll(sends, sendCounts, rank);
            final float[] recv = new float[expected.length];
            c.allToAll(sends[rank], 0, sendCounts[rank], recv, 0, recvCounts, null);
            assertArrayEquals(expected, recv, "rank " + rank);
        });
        comms.forEach(Communicator::close);
    }
}
