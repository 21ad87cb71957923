package io.moeflow.curriculum;

import java.util.List;
import java.util.Objects;

/**
 * How the curriculum picks samples and learning rates; all defaults live here.
 *
 * <p>Pacing kinds work like DeepSpeed's curriculum scheduler on an integer difficulty scale: the pacing value
 * {@code d} (see {@link Pacing}) accepts every sample whose difficulty is {@code <= d / difficultyScale}.
 *
 * @param kind                 which scheduler
 * @param stages               {@link Kind#STAGED}: the stages in order (must be non-empty for STAGED; ignored otherwise)
 * @param replayFraction       {@link Kind#STAGED}: share of each stage's samples drawn instead from the easier samples
 *                             (difficulty below the stage's minimum), so earlier skills are not forgotten; in [0,1)
 * @param difficultyScale      pacing: integer difficulty units per 1.0 of sample difficulty (100: pacing values are
 *                             percent), in [1, {@value #MAX_DIFFICULTY_SCALE}]
 * @param minDifficulty        pacing: DeepSpeed {@code min_difficulty}, in [0, difficultyScale]
 * @param maxDifficulty        pacing: DeepSpeed {@code max_difficulty}, in [minDifficulty, difficultyScale]
 * @param totalCurriculumSteps FIXED_LINEAR/FIXED_ROOT: DeepSpeed {@code total_curriculum_step}, steps to reach the maximum, >= 1
 * @param difficultyStep       FIXED_LINEAR/FIXED_ROOT: DeepSpeed {@code difficulty_step}, pacing values are multiples of it, >= 1
 * @param rootDegree           FIXED_ROOT: DeepSpeed {@code root_degree} (2 = square root), >= 1
 * @param discreteDifficulties FIXED_DISCRETE: DeepSpeed {@code difficulty}, non-decreasing values in [0, difficultyScale];
 *                             its first entry is the start and its last the end (min/maxDifficulty are not used)
 * @param discreteMaxSteps     FIXED_DISCRETE: DeepSpeed {@code max_step}, strictly increasing, >= 1, one shorter than
 *                             {@code discreteDifficulties}
 * @param seed                 seed of the sampling RNG
 */
public record CurriculumConfig(Kind kind, List<Stage> stages, double replayFraction, int difficultyScale,
                               int minDifficulty, int maxDifficulty, long totalCurriculumSteps, int difficultyStep,
                               int rootDegree, List<Integer> discreteDifficulties, List<Long> discreteMaxSteps,
                               long seed) {

    /** The scheduler kinds. */
    public enum Kind {
        /** Stages of difficulty ranges, each with a length (steps or tokens) and its own learning rate. */
        STAGED,
        /** DeepSpeed {@code fixed_linear}: the accepted difficulty grows linearly to the maximum. */
        FIXED_LINEAR,
        /** DeepSpeed {@code fixed_root}: grows like {@code (step/total)^(1/rootDegree)}: fast first, then slower. */
        FIXED_ROOT,
        /** DeepSpeed {@code fixed_discrete}: a list of difficulties, each held until its max step. */
        FIXED_DISCRETE,
        /** No curriculum: uniform over all samples (with replacement), the baseline. */
        NONE,
        /**
         * No curriculum, the other baseline: a true epoch shuffle, every training sample once per epoch in a fresh
         * random order (without replacement), as a shuffled PyTorch DataLoader does.
         */
        SHUFFLE
    }

    /**
     * Default base learning rate of the staged curriculum: the first stage's rate; the later stages take
     * {@link #STAGE_LR_FRACTIONS} of it. 2e-3 suits the default 2-block, 128-channel model (with warmup, see the
     * launcher): measured in docs/quickstart.md, it reaches 93-97% exact match on copy, reverse and pattern in 4,000
     * steps where the article's 1e-4 reached 15-26% (3e-3 and 5e-3 were tried too).
     */
    public static final double DEFAULT_BASE_LR = 2e-3;
    /**
     * The article's base rate (its stages: 1e-4, 5e-5, 2e-5), meant for a model of its size, hundreds of
     * millions of parameters and more; far too small for the default model. {@code --base-lr 1e-4} selects it.
     */
    public static final double ARTICLE_BASE_LR = 1e-4;
    /** Each default stage's rate as a fraction of the base: 1 : 0.5 : 0.2, the article's ratios. */
    public static final List<Double> STAGE_LR_FRACTIONS = List.of(1.0, 0.5, 0.2);

    /** Default seed: DeepSpeed's data-efficiency default. */
    public static final long DEFAULT_SEED = 1234L;
    /**
     * Default replay: one sample in five comes from easier stages. Enough to keep the easy domains' accuracy
     * from collapsing during the expert stage of a short run, while 80% of each stage stays on its own band.
     */
    public static final double DEFAULT_REPLAY_FRACTION = 0.2;
    /** Largest scale: a resolution of 0.0001 is far finer than any difficulty metric needs. */
    public static final int MAX_DIFFICULTY_SCALE = 10_000;
    /** Default scale: pacing values are percent of the [0,1] difficulty range. */
    public static final int DEFAULT_DIFFICULTY_SCALE = 100;
    /**
     * Default pacing start: difficulty 0.10, i.e. only the easiest level of each built-in domain (DeepSpeed
     * likewise starts small, e.g. sequence length 8 of 1024).
     */
    public static final int DEFAULT_MIN_DIFFICULTY = 10;
    /** Default pacing end: everything (difficulty 1.0). */
    public static final int DEFAULT_MAX_DIFFICULTY = 100;
    /**
     * Default pacing granularity: 1 unit (0.01). DeepSpeed's 8 exists for Tensor Core shapes; difficulty here is
     * not a shape, so the finest step is best.
     */
    public static final int DEFAULT_DIFFICULTY_STEP = 1;
    /** Default root degree: square root, DeepSpeed's documented example. */
    public static final int DEFAULT_ROOT_DEGREE = 2;
    /**
     * Default share of training over which pacing reaches the maximum: 70%, so the last 30% trains on all data,
     * matching the default staged curriculum, whose expert stage starts at 70% of the steps.
     */
    public static final double DEFAULT_CURRICULUM_SHARE = 0.7;

    /** Validates every field (even those the kind does not use, so a config is valid whatever kind it is switched to). */
    public CurriculumConfig {
        Objects.requireNonNull(kind, "kind");
        stages = List.copyOf(Objects.requireNonNull(stages, "stages"));
        discreteDifficulties = List.copyOf(Objects.requireNonNull(discreteDifficulties, "discreteDifficulties"));
        discreteMaxSteps = List.copyOf(Objects.requireNonNull(discreteMaxSteps, "discreteMaxSteps"));
        if (kind == Kind.STAGED && stages.isEmpty()) {
            throw new IllegalArgumentException("kind=STAGED needs at least one stage; stages=[]");
        }
        if (!(replayFraction >= 0.0 && replayFraction < 1.0)) {
            throw new IllegalArgumentException("replayFraction=" + replayFraction + " must be in [0,1)");
        }
        if (difficultyScale < 1 || difficultyScale > MAX_DIFFICULTY_SCALE) {
            throw new IllegalArgumentException("difficultyScale=" + difficultyScale + " must be in [1, "
                    + MAX_DIFFICULTY_SCALE + "]");
        }
        if (minDifficulty < 0 || minDifficulty > maxDifficulty || maxDifficulty > difficultyScale) {
            throw new IllegalArgumentException("minDifficulty=" + minDifficulty + ", maxDifficulty=" + maxDifficulty
                    + " must satisfy 0 <= minDifficulty <= maxDifficulty <= difficultyScale=" + difficultyScale);
        }
        if (totalCurriculumSteps < 1) {
            throw new IllegalArgumentException("totalCurriculumSteps=" + totalCurriculumSteps + " must be >= 1");
        }
        if (difficultyStep < 1) {
            throw new IllegalArgumentException("difficultyStep=" + difficultyStep + " must be >= 1");
        }
        if (rootDegree < 1) {
            throw new IllegalArgumentException("rootDegree=" + rootDegree + " must be >= 1");
        }
        validateDiscrete(discreteDifficulties, discreteMaxSteps, difficultyScale);
    }

    private static void validateDiscrete(final List<Integer> difficulties, final List<Long> maxSteps, final int scale) {
        if (difficulties.size() != maxSteps.size() + 1) {
            throw new IllegalArgumentException("discreteDifficulties=" + difficulties + " must have one more entry than"
                    + " discreteMaxSteps=" + maxSteps);
        }
        for (int i = 0; i < difficulties.size(); i++) {
            final int d = difficulties.get(i);
            if (d < 0 || d > scale || i > 0 && d < difficulties.get(i - 1)) {
                throw new IllegalArgumentException("discreteDifficulties=" + difficulties
                        + " must be non-decreasing values in [0, difficultyScale=" + scale + "]");
            }
        }
        for (int i = 0; i < maxSteps.size(); i++) {
            if (maxSteps.get(i) < 1 || i > 0 && maxSteps.get(i) <= maxSteps.get(i - 1)) {
                throw new IllegalArgumentException("discreteMaxSteps=" + maxSteps + " must be strictly increasing and >= 1");
            }
        }
    }

    /** The default curriculum for a run of {@code totalSteps}: {@link Kind#STAGED} with {@link #defaultStages(long)}. */
    public static CurriculumConfig defaults(final long totalSteps) {
        return defaults(Kind.STAGED, totalSteps);
    }

    /**
     * Defaults for any kind, scaled to a run of {@code totalSteps} (>= 1): the default stages, pacing from 0.10 to
     * 1.0 over 70% of the steps, and discrete levels 0.30 / 0.70 / 1.0 switching at 30% and 70% of the steps, which
     * mirrors the default stages' bands.
     */
    public static CurriculumConfig defaults(final Kind kind, final long totalSteps) {
        return defaults(kind, totalSteps, DEFAULT_BASE_LR);
    }

    /** As {@link #defaults(Kind, long)}, with the default stages' rates derived from {@code baseLr}. */
    public static CurriculumConfig defaults(final Kind kind, final long totalSteps, final double baseLr) {
        if (totalSteps < 1) {
            throw new IllegalArgumentException("totalSteps=" + totalSteps + " must be >= 1");
        }
        final long firstSwitch = Math.max(1, Math.round(0.3 * totalSteps));
        final long secondSwitch = Math.max(firstSwitch + 1, Math.round(0.7 * totalSteps));
        return new CurriculumConfig(kind, defaultStages(totalSteps, baseLr), DEFAULT_REPLAY_FRACTION,
                DEFAULT_DIFFICULTY_SCALE, DEFAULT_MIN_DIFFICULTY, DEFAULT_MAX_DIFFICULTY,
                Math.max(1, Math.round(DEFAULT_CURRICULUM_SHARE * totalSteps)), DEFAULT_DIFFICULTY_STEP,
                DEFAULT_ROOT_DEGREE, List.of(30, 70, 100), List.of(firstSwitch, secondSwitch), DEFAULT_SEED);
    }

    /** The default stages at {@link #DEFAULT_BASE_LR}: see {@link #defaultStages(long, double)}. */
    public static List<Stage> defaultStages(final long totalSteps) {
        return defaultStages(totalSteps, DEFAULT_BASE_LR);
    }

    /**
     * The default stages (issue 2's shape): basic [0, 0.3) at {@code baseLr}, intermediate [0.3, 0.7) at half of it,
     * expert [0.7, 1] at a fifth ({@link #STAGE_LR_FRACTIONS}; with the article's base 1e-4: 1e-4, 5e-5, 2e-5). Each
     * band gets a share of the steps equal to its width (30% / 40% / 30%, at least one step each): a plain rule that
     * favours no band; the lr falls as samples get harder, the way fine-tuning lowers the lr.
     */
    public static List<Stage> defaultStages(final long totalSteps, final double baseLr) {
        if (!(baseLr > 0 && Double.isFinite(baseLr))) {
            throw new IllegalArgumentException("baseLr=" + baseLr + " must be > 0 and finite");
        }
        final long basic = Math.max(1, Math.round(0.3 * totalSteps));
        final long intermediate = Math.max(1, Math.round(0.4 * totalSteps));
        final long expert = Math.max(1, totalSteps - basic - intermediate);
        return List.of(
                new Stage("basic", 0.0, 0.3, basic, 0, stageLr(baseLr, 0)),
                new Stage("intermediate", 0.3, 0.7, intermediate, 0, stageLr(baseLr, 1)),
                new Stage("expert", 0.7, 1.0, expert, 0, stageLr(baseLr, 2)));
    }

    /**
     * Default stage {@code i}'s rate: the base times its fraction, rounded to 12 significant digits so that it is
     * the number one would write (3e-3 x 0.2 is 6.000000000000001E-4 in binary; this gives 6.0E-4, the same double
     * as {@code --stage ...:6e-4}).
     */
    static double stageLr(final double baseLr, final int i) {
        return new java.math.BigDecimal(baseLr * STAGE_LR_FRACTIONS.get(i))
                .round(new java.math.MathContext(12)).doubleValue();
    }

    /** This config with another kind. */
    public CurriculumConfig withKind(final Kind newKind) {
        return new CurriculumConfig(newKind, stages, replayFraction, difficultyScale, minDifficulty, maxDifficulty,
                totalCurriculumSteps, difficultyStep, rootDegree, discreteDifficulties, discreteMaxSteps, seed);
    }

    /** This config with other stages. */
    public CurriculumConfig withStages(final List<Stage> newStages) {
        return new CurriculumConfig(kind, newStages, replayFraction, difficultyScale, minDifficulty, maxDifficulty,
                totalCurriculumSteps, difficultyStep, rootDegree, discreteDifficulties, discreteMaxSteps, seed);
    }

    /** This config with another replay fraction. */
    public CurriculumConfig withReplayFraction(final double newReplayFraction) {
        return new CurriculumConfig(kind, stages, newReplayFraction, difficultyScale, minDifficulty, maxDifficulty,
                totalCurriculumSteps, difficultyStep, rootDegree, discreteDifficulties, discreteMaxSteps, seed);
    }

    /** This config with other pacing parameters (fixed_linear / fixed_root). */
    public CurriculumConfig withPacing(final int newMin, final int newMax, final long newTotalSteps,
                                       final int newDifficultyStep, final int newRootDegree) {
        return new CurriculumConfig(kind, stages, replayFraction, difficultyScale, newMin, newMax, newTotalSteps,
                newDifficultyStep, newRootDegree, discreteDifficulties, discreteMaxSteps, seed);
    }

    /** This config with another discrete schedule (fixed_discrete). */
    public CurriculumConfig withDiscrete(final List<Integer> difficulties, final List<Long> maxSteps) {
        return new CurriculumConfig(kind, stages, replayFraction, difficultyScale, minDifficulty, maxDifficulty,
                totalCurriculumSteps, difficultyStep, rootDegree, difficulties, maxSteps, seed);
    }

    /** This config with another seed. */
    public CurriculumConfig withSeed(final long newSeed) {
        return new CurriculumConfig(kind, stages, replayFraction, difficultyScale, minDifficulty, maxDifficulty,
                totalCurriculumSteps, difficultyStep, rootDegree, discreteDifficulties, discreteMaxSteps, newSeed);
    }

    int[] discreteDifficultyArray() {
        return discreteDifficulties.stream().mapToInt(Integer::intValue).toArray();
    }

    long[] discreteMaxStepArray() {
        return discreteMaxSteps.stream().mapToLong(Long::longValue).toArray();
    }
}
