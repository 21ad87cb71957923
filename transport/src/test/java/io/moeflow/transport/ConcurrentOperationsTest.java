package io.moeflow.transport;

import java.util.List;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import io.moeflow.transport.inprocess.InProcessCluster;

/** Operations of different groups and priorities in flight together, on the in-process back-end. */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class ConcurrentOperationsTest {
    @Test
    void shouldFinishAnAllToAllIssuedAfterEightQueuedAllReducesBeforeThemWithTheSequentialBits() {
        final int p = 3;
        final CommunicatorConfig config = CommunicatorBehaviourTest.CONFIG;
        final List<Communicator> comms = InProcessCluster.create(p).communicators(config);
        final float[][][] out = new float[p][][];
        RankThreads.run(p, 100_000, rank -> {
            out[rank] = ConcurrentOperations.run(comms.get(rank));
            comms.get(rank).close();
        });
        ConcurrentOperations.assertSameBits(ConcurrentOperations.runSequentially(p, config), out);
    }
}
