package io.moeflow.trainer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import java.util.List;

import io.moeflow.curriculum.CurriculumConfig;
import io.moeflow.optimizer.AdamWConfig;
import io.moeflow.trainer.parallel.ParallelConfig;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

@Timeout(120)
class DistributedStopTest {
    @Test
    void shouldStopEveryRankAfterTheSameStepWhenOneRankIsAskedToStop() throws Exception {
        final List<long[]> result = RankThreads.run(2, 90, (rank, world) -> {
            final TrainerConfig config = TinyRuns.constantLr(50, 1, 1e-3);
            try (Trainer t = new Trainer(config, TinyRuns.tinyModel(16), AdamWConfig.defaults(),
                CurriculumConfig.defaults(CurriculumConfig.Kind.NONE, 50), TinyRuns.builtin().training(),
                ParallelConfig.dataParallel(2, rank), world)) {
                final boolean finished = t.train(m -> {
                    if (rank == 1 && m.step == 2) {
                        t.requestStop(); // as a signal would, on one rank only, between steps 2 and 3
                    }
                });
                return new long[] {t.completedSteps(), finished ? 1 : 0};
            }
        });
        for (int r = 0; r < 2; r++) {
            assertEquals(3, result.get(r)[0], "rank " + r + " stops after step 3, the first whose reduction saw it");
            assertFalse(result.get(r)[1] == 1, "rank " + r + " reports an early stop");
        }
    }
}
