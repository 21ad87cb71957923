package io.moeflow.trainer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;

import io.moeflow.curriculum.Dataset;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

@Timeout(120)
class EvaluatorTest {
    @Test
    void shouldScoreAnOverfittedModelPerfectlyAndAnUntrainedOneNot() {
        final Dataset facts = TinyRuns.facts();
        try (Trainer trainer = TinyRuns.trainer(TinyRuns.constantLr(300, 1, 1e-2), TinyRuns.tinyModel(16), facts)) {
            final Evaluator untrained = new Evaluator(trainer.model());
            final Evaluator.DomainResult before = untrained.evaluate(facts, 10).get(0);
            assertEquals(4, before.answeredTotal());
            assertTrue(before.correctTotal() < 4, "an untrained model should not know all four sums");

            trainer.train(StepMonitor.NONE);
            final List<Evaluator.DomainResult> after = new Evaluator(trainer.model()).evaluate(facts, 10);
            final Evaluator.DomainResult arith = after.get(0);
            assertEquals("arith", arith.domain());
            assertEquals(4, arith.samples());
            assertEquals(4, arith.correctTotal(), "the model was trained on exactly these four sums");
            assertEquals(1.0, arith.accuracy(0), "all four are easy (difficulty 0.1)");
            assertTrue(arith.loss() < before.loss() - 2, "loss " + arith.loss() + " should fall far below " + before.loss());
        }
    }

    @Test
    void shouldPutDifficultiesIntoTheirBands() {
        assertEquals(0, Evaluator.band(0.0));
        assertEquals(0, Evaluator.band(0.299));
        assertEquals(1, Evaluator.band(0.3));
        assertEquals(1, Evaluator.band(0.699));
        assertEquals(2, Evaluator.band(0.7));
        assertEquals(2, Evaluator.band(1.0));
    }
}
