package io.moeflow.curriculum;

import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.function.Supplier;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class CurriculumConfigTest {
    private static final CurriculumConfig BASE = CurriculumConfig.defaults(100);

    @Test
    void shouldScaleDefaultsToTotalSteps() {
        final CurriculumConfig c = CurriculumConfig.defaults(CurriculumConfig.Kind.FIXED_DISCRETE, 1000);
        assertEquals(List.of(30, 70, 100), c.discreteDifficulties());
        assertEquals(List.of(300L, 700L), c.discreteMaxSteps());
        assertEquals(700, c.totalCurriculumSteps());
        assertEquals(10, c.minDifficulty());
        assertEquals(100, c.maxDifficulty());
        assertEquals(CurriculumConfig.DEFAULT_SEED, c.seed());
        final CurriculumConfig tiny = CurriculumConfig.defaults(CurriculumConfig.Kind.FIXED_DISCRETE, 1);
        assertEquals(List.of(1L, 2L), tiny.discreteMaxSteps(), "switch steps stay strictly increasing");
    }

    @Test
    void shouldRejectInvalidValuesNamingThem() {
        expect("replayFraction=1.0", () -> BASE.withReplayFraction(1.0));
        expect("minDifficulty=50, maxDifficulty=40", () -> BASE.withPacing(50, 40, 10, 1, 1));
        expect("totalCurriculumSteps=0", () -> BASE.withPacing(0, 100, 0, 1, 1));
        expect("difficultyStep=0", () -> BASE.withPacing(0, 100, 10, 0, 1));
        expect("rootDegree=0", () -> BASE.withPacing(0, 100, 10, 1, 0));
        expect("must have one more entry", () -> BASE.withDiscrete(List.of(10, 20), List.of(5L, 6L)));
        expect("non-decreasing", () -> BASE.withDiscrete(List.of(50, 20), List.of(5L)));
        expect("strictly increasing", () -> BASE.withDiscrete(List.of(10, 20, 30), List.of(5L, 5L)));
        expect("kind=STAGED needs at least one stage", () -> BASE.withStages(List.of()));
        expect("stage s: minDifficulty=0.5, maxDifficulty=0.5", () -> new Stage("s", 0.5, 0.5, 1, 0, 1e-3));
        expect("stage s: lengthSteps=1, lengthTokens=1", () -> new Stage("s", 0.0, 0.5, 1, 1, 1e-3));
        expect("stage s: lengthSteps=0, lengthTokens=0", () -> new Stage("s", 0.0, 0.5, 0, 0, 1e-3));
        expect("stage s: lr=-1.0", () -> new Stage("s", 0.0, 0.5, 1, 0, -1.0));
        expect("totalSteps=0", () -> CurriculumConfig.defaults(0));
        expect("difficultyScale=0", () -> new CurriculumConfig(CurriculumConfig.Kind.NONE, List.of(), 0, 0, 0, 0, 1, 1, 1,
                List.of(0), List.of(), 1));
        // a config without stages is fine for kinds that do not stage
        assertEquals(CurriculumConfig.Kind.NONE,
                CurriculumConfig.defaults(CurriculumConfig.Kind.NONE, 10).withStages(List.of()).kind());
    }

    @Test
    void shouldRoundTripStateThroughLongs() {
        final CurriculumState s = new CurriculumState(5, 1, 2, 30, 40, 50, -123456789L, 0.35, 7, 8);
        assertEquals(s, CurriculumState.fromLongs(s.toLongs()));
        assertEquals(CurriculumState.NAMES.size(), s.toLongs().length);
        expect("expected 10", () -> CurriculumState.fromLongs(new long[3]));
        expect("negative counter", () -> new CurriculumState(-1, 0, 0, 0, 0, 0, 0, 0, 0, 0));
    }

    private static void expect(final String part, final Supplier<?> build) {
        final IllegalArgumentException e = assertThrows(IllegalArgumentException.class, build::get);
        assertTrue(e.getMessage().contains(part), e.getMessage());
    }
}
