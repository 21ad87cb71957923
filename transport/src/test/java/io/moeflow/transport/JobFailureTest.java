package io.moeflow.transport;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import io.moeflow.transport.inprocess.InProcessCluster;

/**
 * A failure anywhere fails every rank: the rank that detects it sends ABORT on the control lane, so
 * ranks that wait for a healthy peer fail too, naming the rank that failed first and why. The
 * operation timeout here (60 s) is far longer than the test's own limit, so only the ABORT can make
 * these ranks fail.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
public class JobFailureTest {
    public static final CommunicatorConfig CONFIG = CommunicatorConfig.DEFAULT.withOpTimeoutNs(TimeUnit.SECONDS.toNanos(60));

    @Test
    void shouldFailARankWaitingForAHealthyPeerWhenTwoOtherRanksDisagree() {
        assertAbortReachesARankWaitingForAHealthyPeer(InProcessCluster.create(3).communicators(CONFIG));
    }

    /**
     * Ranks 0 and 1 run an all-reduce in their sub-group with different counts; rank 2 waits for a
     * message from rank 1, which is healthy but never sends. Only the ABORT of rank 0 or 1 can end
     * rank 2's wait (give communicators with a long operation timeout). Every rank's next operation
     * fails too, with the first failure as cause. Shared by the in-process and the Aeron tests.
     */
    public static void assertAbortReachesARankWaitingForAHealthyPeer(final List<Communicator> comms) {
        final PeerFailureException[] failures = new PeerFailureException[3];
        final TransportException[] next = new TransportException[3];
        RankThreads.run(3, 20_000, rank -> {
            final Communicator world = comms.get(rank);
            final Communicator pair = world.split(rank < 2 ? 0 : 1, rank); // {0, 1} and {2}
            final float[] buf = new float[1000];
            if (rank < 2) {
                failures[rank] = assertThrows(PeerFailureException.class,
                    () -> pair.allReduce(buf, 0, rank == 0 ? 500 : 1000, ReduceOp.SUM));
            } else {
                failures[rank] = assertThrows(PeerFailureException.class, () -> world.recv(1, buf, 0, 10));
            }
            next[rank] = assertThrows(PeerFailureException.class, world::barrier);
        });
        final PeerFailureException seen = failures[2];
        assertEquals(PeerFailureException.Reason.PROTOCOL_ERROR, seen.reason(), seen.getMessage());
        assertTrue(seen.peer() == 0 || seen.peer() == 1, seen.getMessage());
        assertTrue(seen.getMessage().contains("failed first (PROTOCOL_ERROR, reported by rank "), seen.getMessage());
        assertTrue(seen.getMessage().contains("do all ranks pass the same count"), seen.getMessage());
        for (int r = 0; r < 3; r++) {
            // the first failure: the operation's own, or, if the ABORT came between two operations, its cause
            final Throwable first = failures[r].getCause() instanceof PeerFailureException ? failures[r].getCause() : failures[r];
            assertSame(first, next[r].getCause(), "rank " + r + ": the next operation fails with the first as cause");
            assertEquals(failures[r].peer(), ((PeerFailureException) next[r]).peer());
            assertEquals(failures[r].reason(), ((PeerFailureException) next[r]).reason());
        }
    }

    @Test
    void shouldNameARankThatClosedWhileOthersStillNeedIt() {
        final List<Communicator> comms = InProcessCluster.create(3).communicators(CONFIG);
        final PeerFailureException[] failures = new PeerFailureException[3];
        RankThreads.run(3, 20_000, rank -> {
            if (rank == 1) {
                comms.get(1).close(); // leaves without taking part
                return;
            }
            final float[] buf = new float[100_000];
            failures[rank] = assertThrows(PeerFailureException.class,
                () -> comms.get(rank).allReduce(buf, 0, buf.length, ReduceOp.SUM));
        });
        for (final int r : new int[] {0, 2}) {
            assertEquals(1, failures[r].peer(), failures[r].getMessage());
            assertEquals(PeerFailureException.Reason.EXITED, failures[r].reason(), failures[r].getMessage());
        }
    }

    @Test
    void shouldFailQueuedAndRunningOperationsOfEveryLaneWithTheKilledRank() {
        final InProcessCluster cluster = InProcessCluster.create(3);
        final List<Communicator> comms = cluster.communicators(CONFIG);
        final PeerFailureException[][] failures = new PeerFailureException[3][];
        RankThreads.run(3, 20_000, rank -> {
            if (rank == 2) {
                Thread.sleep(200);
                cluster.kill(2);
                return;
            }
            final Communicator c = comms.get(rank);
            final float[] a = new float[100_000];
            final float[] b = new float[100_000];
            final CollectiveHandle first = c.allReduceAsync(a, 0, a.length, ReduceOp.SUM, null);
            final CollectiveHandle queued = c.allReduceAsync(b, 0, b.length, ReduceOp.SUM, null);
            final float[] small = new float[1];
            final PeerFailureException urgent = assertThrows(PeerFailureException.class,
                () -> c.urgent().allReduce(small, 0, 1, ReduceOp.SUM));
            failures[rank] = new PeerFailureException[] {urgent,
                assertThrows(PeerFailureException.class, () -> first.await(TimeUnit.SECONDS.toNanos(10))),
                assertThrows(PeerFailureException.class, () -> queued.await(TimeUnit.SECONDS.toNanos(10)))};
        });
        for (int r = 0; r < 2; r++) {
            for (final PeerFailureException f : failures[r]) {
                assertEquals(2, f.peer(), f.getMessage());
                assertEquals(PeerFailureException.Reason.DISCONNECTED, f.reason(), f.getMessage());
            }
            assertSame(failures[r][0], failures[r][1], "one exception for every operation the failure ended");
        }
    }
}
