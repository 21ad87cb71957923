package io.moeflow.curriculum;

/**
 * What the scheduler decided for one step, filled in place by {@link CurriculumScheduler#next(int[], StepPlan)}:
 * the caller allocates one and reuses it every step.
 */
public final class StepPlan {
    private long step;
    private int stageIndex;
    private String stageName = "";
    private double lr = Double.NaN;
    private double maxDifficulty;
    private long samplesConsumed;
    private long tokensConsumed;

    /** 0-based index of this step: the number of steps planned before it. */
    public long step() {
        return step;
    }

    /**
     * STAGED: index of the current stage; FIXED_DISCRETE: index of the current difficulty in the list;
     * FIXED_LINEAR, FIXED_ROOT, NONE: 0.
     */
    public int stageIndex() {
        return stageIndex;
    }

    /** The stage's name; for pacing kinds the kind and accepted difficulty, e.g. {@code fixed_linear<=0.35}; {@code none}. */
    public String stageName() {
        return stageName;
    }

    /** Learning rate this step's stage sets, or NaN when the scheduler sets none (pacing kinds, NONE, stages with NaN lr). */
    public double lr() {
        return lr;
    }

    /** Largest sample difficulty this step may draw (replayed samples are easier); 1.0 for NONE. */
    public double maxDifficulty() {
        return maxDifficulty;
    }

    /** Samples started in rows so far, this step included (a sample cut at a row end counts). */
    public long samplesConsumed() {
        return samplesConsumed;
    }

    /** Trained tokens so far, this step included: B*T per step (the target positions of each row). */
    public long tokensConsumed() {
        return tokensConsumed;
    }

    void set(final long step, final int stageIndex, final String stageName, final double lr,
             final double maxDifficulty, final long samplesConsumed, final long tokensConsumed) {
        this.step = step;
        this.stageIndex = stageIndex;
        this.stageName = stageName;
        this.lr = lr;
        this.maxDifficulty = maxDifficulty;
        this.samplesConsumed = samplesConsumed;
        this.tokensConsumed = tokensConsumed;
    }

    @Override
    public String toString() {
        return "StepPlan[step=" + step + ", stage=" + stageIndex + " " + stageName + ", lr=" + lr + ", maxDifficulty="
                + maxDifficulty + ", samples=" + samplesConsumed + ", tokens=" + tokensConsumed + "]";
    }
}
