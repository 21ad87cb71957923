package io.moeflow.curriculum;

import java.util.Objects;

/**
 * One stage of a {@link CurriculumConfig.Kind#STAGED} curriculum: which samples, for how long, at which learning rate.
 *
 * @param name          shown in progress and metrics, non-empty
 * @param minDifficulty lower bound, inclusive, in [0,1)
 * @param maxDifficulty upper bound, exclusive, in (minDifficulty, 1]; 1 is inclusive, so samples of difficulty 1 belong to the stage ending at 1
 * @param lengthSteps   stage length in training steps, or 0 when {@code lengthTokens} is used
 * @param lengthTokens  stage length in trained tokens (B*T per step), or 0 when {@code lengthSteps} is used;
 *                      a stage ends after the first step that reaches it, so it lasts ceil(lengthTokens / (B*T)) steps.
 *                      Exactly one of the two lengths is positive. The last stage lasts until training ends.
 * @param lr            learning rate the stage sets (positive), or NaN to leave the optimizer's own schedule in charge
 */
public record Stage(String name, double minDifficulty, double maxDifficulty, long lengthSteps, long lengthTokens,
                    double lr) {

    /** Validates; messages name the stage, the field and its value. */
    public Stage {
        Objects.requireNonNull(name, "name");
        if (name.isEmpty()) {
            throw new IllegalArgumentException("stage name is empty");
        }
        if (!(minDifficulty >= 0.0 && minDifficulty < maxDifficulty && maxDifficulty <= 1.0)) {
            throw new IllegalArgumentException("stage " + name + ": minDifficulty=" + minDifficulty + ", maxDifficulty="
                    + maxDifficulty + " must satisfy 0 <= minDifficulty < maxDifficulty <= 1");
        }
        if (lengthSteps < 0 || lengthTokens < 0 || (lengthSteps > 0) == (lengthTokens > 0)) {
            throw new IllegalArgumentException("stage " + name + ": lengthSteps=" + lengthSteps + ", lengthTokens="
                    + lengthTokens + ": exactly one must be positive and the other 0");
        }
        if (!Double.isNaN(lr) && !(lr > 0.0 && lr < Double.POSITIVE_INFINITY)) {
            throw new IllegalArgumentException("stage " + name + ": lr=" + lr + " must be positive and finite, or NaN");
        }
    }

    /** Whether a sample of this difficulty belongs to the stage ([min, max), or [min, 1] when max is 1). */
    public boolean contains(final double difficulty) {
        return difficulty >= minDifficulty && (difficulty < maxDifficulty || maxDifficulty == 1.0 && difficulty == 1.0);
    }
}
