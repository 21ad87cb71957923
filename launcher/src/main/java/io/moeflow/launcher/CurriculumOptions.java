package io.moeflow.launcher;

import java.util.ArrayList;
import java.util.List;

import io.moeflow.curriculum.CurriculumConfig;
import io.moeflow.curriculum.Stage;
import picocli.CommandLine.Option;

/**
 * Curriculum options (a picocli mixin). Unset options take the defaults of
 * {@link CurriculumConfig#defaults(CurriculumConfig.Kind, long)}, which scale with the run length.
 */
public final class CurriculumOptions {
    @Option(names = "--curriculum", paramLabel = "KIND", defaultValue = "STAGED",
        description = "Scheduler: ${COMPLETION-CANDIDATES} (fixed_* = DeepSpeed pacing, none = shuffled baseline). "
            + "Default: ${DEFAULT-VALUE}")
    CurriculumConfig.Kind kind;

    @Option(names = "--stage", paramLabel = "NAME:MIN:MAX:LENGTH:LR", split = ",",
        description = "A curriculum stage (repeat, or separate with commas): difficulty range [MIN,MAX), LENGTH in steps "
            + "(200), percent of --steps (30%%) or tokens (500000tok), and the stage's learning rate. "
            + "Default: basic:0:0.3:30%%:B, intermediate:0.3:0.7:40%%:B/2, expert:0.7:1:30%%:B/5 with B = --base-lr")
    List<String> stages;

    @Option(names = "--base-lr", paramLabel = "LR", defaultValue = "" + CurriculumConfig.DEFAULT_BASE_LR,
        description = "The default stages' base learning rate: basic at LR, intermediate at LR/2, expert at LR/5. "
            + "1e-4 gives the article's 1e-4, 5e-5, 2e-5 (values for a model of its size, far larger than the "
            + "default). Default: ${DEFAULT-VALUE}")
    double baseLr;

    @Option(names = "--replay-fraction", paramLabel = "F",
        description = "Staged: share of each stage's samples taken from easier stages, against forgetting. Default: "
            + CurriculumConfig.DEFAULT_REPLAY_FRACTION)
    Double replayFraction;

    @Option(names = "--min-difficulty", paramLabel = "D",
        description = "Pacing: difficulty accepted at the start, in [0,1]. Default: 0.10")
    Double minDifficulty;

    @Option(names = "--max-difficulty", paramLabel = "D",
        description = "Pacing: difficulty accepted at the end, in [0,1]. Default: 1.0")
    Double maxDifficulty;

    @Option(names = "--curriculum-steps", paramLabel = "N",
        description = "fixed_linear/fixed_root: steps to reach --max-difficulty. Default: 70%% of --steps")
    Long curriculumSteps;

    @Option(names = "--difficulty-step", paramLabel = "D",
        description = "fixed_linear/fixed_root: the accepted difficulty moves in multiples of this. Default: 0.01")
    Double difficultyStep;

    @Option(names = "--root-degree", paramLabel = "N",
        description = "fixed_root: root degree (2 = square root). Default: " + CurriculumConfig.DEFAULT_ROOT_DEGREE)
    Integer rootDegree;

    @Option(names = "--discrete-difficulties", paramLabel = "D", split = ",",
        description = "fixed_discrete: difficulty levels, e.g. 0.3,0.7,1. Default: 0.3,0.7,1")
    List<Double> discreteDifficulties;

    @Option(names = "--discrete-max-steps", paramLabel = "N", split = ",",
        description = "fixed_discrete: last step of each level but the final one. Default: 30%%,70%% of --steps")
    List<Long> discreteMaxSteps;

    @Option(names = "--curriculum-seed", paramLabel = "SEED", defaultValue = "" + CurriculumConfig.DEFAULT_SEED,
        description = "Seed of the curriculum's sampling. Default: ${DEFAULT-VALUE}")
    long seed;

    CurriculumConfig toConfig(final long totalSteps) {
        CurriculumConfig c = CurriculumConfig.defaults(kind, totalSteps, baseLr).withSeed(seed);
        if (stages != null && !stages.isEmpty()) {
            c = c.withStages(parseStages(stages, totalSteps));
        }
        if (replayFraction != null) {
            c = c.withReplayFraction(replayFraction);
        }
        final int scale = c.difficultyScale();
        if (minDifficulty != null || maxDifficulty != null || curriculumSteps != null || difficultyStep != null
            || rootDegree != null) {
            c = c.withPacing(
                minDifficulty == null ? c.minDifficulty() : units("--min-difficulty", minDifficulty, scale),
                maxDifficulty == null ? c.maxDifficulty() : units("--max-difficulty", maxDifficulty, scale),
                curriculumSteps == null ? c.totalCurriculumSteps() : curriculumSteps,
                difficultyStep == null ? c.difficultyStep() : units("--difficulty-step", difficultyStep, scale),
                rootDegree == null ? c.rootDegree() : rootDegree);
        }
        if (discreteDifficulties != null || discreteMaxSteps != null) {
            final List<Integer> levels = new ArrayList<>();
            if (discreteDifficulties != null) {
                for (final double d : discreteDifficulties) {
                    levels.add(units("--discrete-difficulties", d, scale));
                }
            }
            c = c.withDiscrete(discreteDifficulties == null ? c.discreteDifficulties() : levels,
                discreteMaxSteps == null ? c.discreteMaxSteps() : discreteMaxSteps);
        }
        return c;
    }

    /** A [0,1] difficulty on the config's integer scale. */
    private static int units(final String option, final double difficulty, final int scale) {
        if (!(difficulty >= 0 && difficulty <= 1)) {
            throw new IllegalArgumentException(option + "=" + difficulty + " must be a difficulty in [0,1]");
        }
        return (int) Math.round(difficulty * scale);
    }

    /** Parses NAME:MIN:MAX:LENGTH:LR stage specs. */
    static List<Stage> parseStages(final List<String> specs, final long totalSteps) {
        final List<Stage> parsed = new ArrayList<>();
        for (final String spec : specs) {
            final String[] f = spec.trim().split(":");
            if (f.length != 5) {
                throw new IllegalArgumentException("--stage " + spec + ": expected NAME:MIN:MAX:LENGTH:LR, e.g. "
                    + "basic:0:0.3:30%:1e-4");
            }
            try {
                final double min = Double.parseDouble(f[1]);
                final double max = Double.parseDouble(f[2]);
                final double lr = Double.parseDouble(f[4]);
                final String length = f[3].trim().toLowerCase();
                long steps = 0;
                long tokens = 0;
                if (length.endsWith("%")) {
                    final double percent = Double.parseDouble(length.substring(0, length.length() - 1));
                    steps = Math.max(1, Math.round(percent / 100.0 * totalSteps));
                } else if (length.endsWith("tok")) {
                    tokens = Long.parseLong(length.substring(0, length.length() - 3));
                } else {
                    steps = Long.parseLong(length);
                }
                parsed.add(new Stage(f[0], min, max, steps, tokens, lr));
            } catch (final NumberFormatException e) {
                throw new IllegalArgumentException("--stage " + spec + ": " + e.getMessage()
                    + "; numbers expected in MIN, MAX, LENGTH (N, N% or Ntok) and LR");
            }
        }
        return parsed;
    }
}
