package io.moeflow.trainer.parallel;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.moeflow.trainer.parallel.ParallelConfig.GradCompression;
import org.junit.jupiter.api.Test;

class ParallelConfigTest {
    @Test
    void shouldRejectImpossibleJobShapesWithTheOffendingValue() {
        final int bucket = ParallelConfig.DEFAULT_BUCKET_BYTES;
        assertMessage("worldSize=0", () -> new ParallelConfig(0, 0, 1, bucket, GradCompression.NONE));
        assertMessage("rank=2", () -> new ParallelConfig(2, 2, 1, bucket, GradCompression.NONE));
        assertMessage("rank=-1", () -> new ParallelConfig(2, -1, 1, bucket, GradCompression.NONE));
        assertMessage("expertParallel=3", () -> new ParallelConfig(4, 0, 3, bucket, GradCompression.NONE));
        assertMessage("bucketBytes=100", () -> new ParallelConfig(2, 0, 1, 100, GradCompression.NONE));
        assertMessage("gradCompression=null", () -> new ParallelConfig(2, 0, 1, bucket, null));
        final ParallelConfig ep = new ParallelConfig(4, 1, 4, bucket, GradCompression.NONE);
        assertMessage("expert count 6", () -> ep.checkFits(6, 8));
        assertMessage("batchSize=6", () -> ep.checkFits(8, 6));
    }

    @Test
    void shouldPlaceExpertsAndReplicasByRank() {
        // 4 ranks, K=2: groups {0,1} and {2,3}; ranks 1 and 3 hold experts 4..7 of 8
        final ParallelConfig c = new ParallelConfig(4, 3, 2, ParallelConfig.DEFAULT_BUCKET_BYTES, GradCompression.NONE);
        assertTrue(c.distributed());
        assertEquals(2, c.expertReplicas());
        assertEquals(1, c.expertShard());
        assertFalse(ParallelConfig.SINGLE.distributed());
        final ParallelGroups single = ParallelGroups.single(8);
        assertFalse(single.distributed());
        assertEquals(8, single.expertsPerRank());
        assertTrue(single.holdsExpert(7));
    }

    private static void assertMessage(final String expected, final org.junit.jupiter.api.function.Executable call) {
        final IllegalArgumentException e = assertThrows(IllegalArgumentException.class, call);
        assertTrue(e.getMessage().contains(expected), "message '" + e.getMessage() + "' should name " + expected);
    }
}
