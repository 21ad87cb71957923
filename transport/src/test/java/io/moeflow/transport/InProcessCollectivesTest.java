package io.moeflow.transport;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import io.moeflow.transport.inprocess.InProcessCluster;

/** Every collective on the in-process back-end, against the plain references. */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class InProcessCollectivesTest {
    /** Summing p values in a different order than the exact double sum costs at most this, relative to sum |x|. */
    static final double SUM_TOLERANCE = 1e-6;
    static final CommunicatorConfig CONFIG = CommunicatorConfig.DEFAULT.withOpTimeoutNs(TimeUnit.SECONDS.toNanos(10));

    /** Small frames (256 B) so that every size here spans many frames and the pipelining is exercised. */
    static List<Communicator> cluster(final int size) {
        return InProcessCluster.create(size, 1 << 14, 256).communicators(CONFIG);
    }

    @ParameterizedTest(name = "p={0} n={1} {2}")
    @CsvSource({"1,10,SUM", "2,1,SUM", "2,1000,SUM", "2,70000,AVERAGE", "3,7,SUM", "3,20000,SUM", "3,20000,AVERAGE",
        "4,16385,SUM", "5,3,SUM", "5,40000,AVERAGE", "5,4,AVERAGE", "6,5,SUM", "6,30001,SUM", "7,9,AVERAGE",
        "7,50000,AVERAGE", "8,8,SUM", "8,40000,SUM"})
    void shouldAllReduceToTheReferenceBitsOnEveryRank(final int p, final int n, final ReduceOp op) {
        final List<Communicator> comms = cluster(p);
        final float[][] inputs = new float[p][];
        for (int r = 0; r < p; r++) {
            inputs[r] = RankThreads.values(42, r, n);
        }
        final boolean small = CONFIG.allReduceUsesRecursiveDoubling(n, false);
        final float[] expected = small ? ReferenceCollectives.recursiveDoublingAllReduce(inputs, op)
            : ReferenceCollectives.ringAllReduce(inputs, op);
        final float[][] outputs = new float[p][];
        RankThreads.run(p, 30_000, rank -> {
            final float[] buf = new float[n + 3];
            System.arraycopy(inputs[rank], 0, buf, 2, n);
            buf[0] = 7f;
            buf[n + 2] = 9f;
            comms.get(rank).allReduce(buf, 2, n, op);
            assertEquals(7f, buf[0], "values before the range are untouched");
            assertEquals(9f, buf[n + 2], "values after the range are untouched");
            outputs[rank] = Arrays.copyOfRange(buf, 2, n + 2);
        });
        final double[] exact = ReferenceCollectives.exactSum(inputs);
        for (int r = 0; r < p; r++) {
            assertArrayEquals(expected, outputs[r], "rank " + r + " differs from the reference order");
        }
        for (int i = 0; i < n; i++) {
            final double want = op == ReduceOp.AVERAGE ? exact[i] / p : exact[i];
            assertEquals(want, outputs[0][i], SUM_TOLERANCE * p, "element " + i);
        }
        comms.forEach(Communicator::close);
    }

    @Test
    void shouldGiveTheSameBitsOnEveryRun() {
        final int p = 3;
        final int n = 50_001;
        final float[][] first = new float[p][];
        for (int run = 0; run < 3; run++) {
            final List<Communicator> comms = cluster(p);
            final float[][] outputs = new float[p][];
            RankThreads.run(p, 30_000, rank -> {
                final float[] buf = RankThreads.values(7, rank, n);
                comms.get(rank).allReduce(buf, 0, n, ReduceOp.SUM);
                outputs[rank] = buf;
            });
            for (int r = 0; r < p; r++) {
                if (run == 0) {
                    first[r] = outputs[r];
                } else {
                    assertArrayEquals(first[r], outputs[r], "run " + run + " rank " + r);
                }
            }
        }
    }

    @ParameterizedTest(name = "p={0} countPerRank={1} {2}")
    @CsvSource({"1,5,AVERAGE", "2,1,SUM", "3,1000,AVERAGE", "3,1000,SUM", "4,0,SUM", "5,333,AVERAGE", "6,500,SUM",
        "7,77,AVERAGE", "8,1000,SUM"})
    void shouldReduceScatterAndAllGather(final int p, final int count, final ReduceOp op) {
        final List<Communicator> comms = cluster(p);
        final float[][] inputs = new float[p][];
        for (int r = 0; r < p; r++) {
            inputs[r] = RankThreads.values(3, r, p * count);
        }
        final float[] reduced = ReferenceCollectives.ringReduceScatter(inputs, op);
        final double[] exact = ReferenceCollectives.exactSum(inputs);
        for (int i = 0; i < p * count; i++) {
            final double want = op == ReduceOp.AVERAGE ? exact[i] / p : exact[i];
            assertEquals(want, reduced[i], SUM_TOLERANCE * p, "reference element " + i);
        }
        final float[][] gathered = new float[p][];
        RankThreads.run(p, 30_000, rank -> {
            final Communicator c = comms.get(rank);
            final float[] buf = inputs[rank].clone();
            c.reduceScatter(buf, 0, count, op, null);
            assertArrayEquals(Arrays.copyOfRange(reduced, rank * count, (rank + 1) * count),
                Arrays.copyOfRange(buf, rank * count, (rank + 1) * count), "own block after reduce-scatter");
            c.allGather(buf, 0, count, null);
            gathered[rank] = buf;
        });
        for (int r = 0; r < p; r++) {
            assertArrayEquals(reduced, gathered[r], "rank " + r + " after all-gather");
        }
    }

    @ParameterizedTest(name = "p={0} countPerRank={1}")
    @CsvSource({"3,100", "6,41", "8,256"})
    void shouldAllGatherToTheReference(final int p, final int count) {
        final List<Communicator> comms = cluster(p);
        final float[][] inputs = new float[p][];
        for (int r = 0; r < p; r++) {
            inputs[r] = RankThreads.values(13, r, p * count);
        }
        final float[] expected = ReferenceCollectives.allGather(inputs, count);
        RankThreads.run(p, 30_000, rank -> {
            final float[] buf = inputs[rank].clone();
            comms.get(rank).allGather(buf, 0, count, null);
            assertArrayEquals(expected, buf, "rank " + rank);
        });
    }

    @Test
    void shouldAllGatherInts() {
        final int p = 4;
        final List<Communicator> comms = cluster(p);
        RankThreads.run(p, 30_000, rank -> {
            final int[] buf = new int[p * 100];
            for (int i = 0; i < 100; i++) {
                buf[rank * 100 + i] = rank * 1000 + i;
            }
            comms.get(rank).allGather(buf, 0, 100);
            for (int r = 0; r < p; r++) {
                for (int i = 0; i < 100; i++) {
                    assertEquals(r * 1000 + i, buf[r * 100 + i]);
                }
            }
        });
    }

    @ParameterizedTest(name = "p={0} n={1}")
    @CsvSource({"2,10", "3,100000", "4,1", "5,20000", "5,7", "6,30000", "7,3", "8,50000", "8,100"})
    void shouldBroadcastFromEveryRoot(final int p, final int n) {
        final List<Communicator> comms = cluster(p);
        final float[][] inputs = new float[p][];
        for (int r = 0; r < p; r++) {
            inputs[r] = RankThreads.values(r, 99, n);
        }
        RankThreads.run(p, 30_000, rank -> {
            for (int root = 0; root < p; root++) {
                final float[] buf = rank == root ? inputs[root].clone() : new float[n];
                comms.get(rank).broadcast(buf, 0, n, root);
                assertArrayEquals(ReferenceCollectives.broadcast(inputs, root), buf, "root " + root);
                final int[] ints = new int[n];
                final int[] sent = new int[n];
                for (int i = 0; i < n; i++) {
                    sent[i] = (root + 1) * 1_000_003 + i * 7919; // every element distinct
                }
                if (rank == root) {
                    System.arraycopy(sent, 0, ints, 0, n);
                }
                comms.get(rank).broadcast(ints, 0, n, root);
                assertArrayEquals(sent, ints, "int broadcast from root " + root);
            }
        });
    }

    @ParameterizedTest(name = "p={0}")
    @CsvSource({"1", "2", "3", "5", "6", "8"})
    void shouldExchangeVariableCountsAllToAll(final int p) {
        final List<Communicator> comms = cluster(p);
        final int[][] sendCounts = new int[p][p];
        final float[][] sends = new float[p][];
        for (int r = 0; r < p; r++) {
            int total = 0;
            for (int j = 0; j < p; j++) {
                sendCounts[r][j] = (r * 7 + j * 13) % 5 == 0 ? 0 : 100 * ((r + 2 * j) % 4) + (r + j) % 3;
                total += sendCounts[r][j];
            }
            sends[r] = RankThreads.values(11, r, total);
        }
        RankThreads.run(p, 30_000, rank -> {
            final Communicator c = comms.get(rank);
            // exchange the counts first, as token dispatch does
            final int[] recvCounts = new int[p];
            final int[] ones = new int[p];
            Arrays.fill(ones, 1);
            c.allToAll(sendCounts[rank].clone(), 0, ones, recvCounts, 0, ones);
            final float[] expected = ReferenceCollectives.allToAll(sends, sendCounts, rank);
            final float[] recv = new float[expected.length];
            c.allToAll(sends[rank], 0, sendCounts[rank], recv, 0, recvCounts, null);
            assertArrayEquals(expected, recv);
            final int[] intSend = new int[sends[rank].length];
            for (int i = 0; i < intSend.length; i++) {
                intSend[i] = Float.floatToIntBits(sends[rank][i]);
            }
            final int[] intRecv = new int[expected.length];
            c.allToAll(intSend, 0, sendCounts[rank], intRecv, 0, recvCounts);
            for (int i = 0; i < expected.length; i++) {
                assertEquals(Float.floatToIntBits(expected[i]), intRecv[i]);
            }
        });
    }

    @ParameterizedTest(name = "p={0}")
    @CsvSource({"5", "7"})
    void shouldNotLeaveTheBarrierBeforeEveryoneEntered(final int p) {
        final List<Communicator> comms = cluster(p);
        final java.util.concurrent.atomic.AtomicInteger entered = new java.util.concurrent.atomic.AtomicInteger();
        RankThreads.run(p, 30_000, rank -> {
            for (int round = 1; round <= 20; round++) {
                if (rank == round % p) {
                    Thread.sleep(5); // one late rank per round
                }
                entered.incrementAndGet();
                comms.get(rank).barrier();
                assertTrue(entered.get() >= round * p, "left round " + round + " with only " + entered.get() + " entries");
                comms.get(rank).barrier(); // nobody enters the next round before everyone checked this one
            }
        });
    }

    @Test
    void shouldSendAndReceivePointToPoint() {
        final int p = 3;
        final List<Communicator> comms = cluster(p);
        RankThreads.run(p, 30_000, rank -> {
            final Communicator c = comms.get(rank);
            final int right = (rank + 1) % p;
            final int left = (rank + p - 1) % p;
            final float[] mine = RankThreads.values(5, rank, 5000);
            final float[] got = new float[5000];
            c.sendRecv(right, mine, 0, 5000, left, got, 0, 5000);
            assertArrayEquals(RankThreads.values(5, left, 5000), got);
            if (rank == 0) {
                c.send(1, new int[] {1, 2, 3}, 0, 3);
                c.send(1, new float[] {4f}, 0, 1);
                c.send(1, new float[0], 0, 0);
            } else if (rank == 1) {
                final int[] ints = new int[3];
                c.recv(0, ints, 0, 3);
                assertArrayEquals(new int[] {1, 2, 3}, ints);
                final float[] one = new float[1];
                c.recv(0, one, 0, 1);
                assertEquals(4f, one[0]);
                c.recv(0, new float[0], 0, 0);
            }
        });
    }
}
