package io.moeflow.curriculum;

import java.util.List;

/**
 * Everything a {@link CurriculumScheduler} needs to continue bit for bit: position, stage, counters and the RNG.
 * Plain numbers, so a checkpoint can store them as scalars ({@link #toLongs()} / {@link #fromLongs(long[])} give a
 * flat int64 array in the order of {@link #NAMES}).
 *
 * @param step               steps planned so far
 * @param stageIndex         current stage (STAGED), otherwise 0
 * @param stepsInStage       steps planned in the current stage
 * @param tokensInStage      tokens trained in the current stage
 * @param samplesConsumed    samples started so far
 * @param tokensConsumed     tokens trained so far
 * @param rngState           {@link SplitMix64#state()} of the sampling RNG
 * @param currentDifficulty  max accepted difficulty of the last planned step (DeepSpeed's {@code current_difficulty});
 *                           informational, recomputed on restore
 * @param datasetFingerprint {@link Dataset#fingerprint()} of the training set it was drawn from
 * @param configFingerprint  hash of the config, batch size and sequence length
 */
public record CurriculumState(long step, int stageIndex, long stepsInStage, long tokensInStage, long samplesConsumed,
                              long tokensConsumed, long rngState, double currentDifficulty, long datasetFingerprint,
                              long configFingerprint) {
    /** Names of the entries of {@link #toLongs()}, in order (snake_case, as DeepSpeed names its sampler state). */
    public static final List<String> NAMES = List.of("step", "stage_index", "steps_in_stage", "tokens_in_stage",
            "consumed_samples", "consumed_tokens", "rng_state", "current_difficulty_bits", "dataset_fingerprint",
            "config_fingerprint");

    /** Validates counters (non-negative). */
    public CurriculumState {
        if (step < 0 || stageIndex < 0 || stepsInStage < 0 || tokensInStage < 0 || samplesConsumed < 0
                || tokensConsumed < 0) {
            throw new IllegalArgumentException("curriculum state has a negative counter: " + this);
        }
    }

    /** The state as int64 values in {@link #NAMES} order; the difficulty as its IEEE-754 bits. */
    public long[] toLongs() {
        return new long[] {step, stageIndex, stepsInStage, tokensInStage, samplesConsumed, tokensConsumed, rngState,
            Double.doubleToRawLongBits(currentDifficulty), datasetFingerprint, configFingerprint};
    }

    /** Inverse of {@link #toLongs()}. */
    public static CurriculumState fromLongs(final long[] v) {
        if (v.length != NAMES.size()) {
            throw new IllegalArgumentException("curriculum state has " + v.length + " values, expected " + NAMES.size()
                    + " " + NAMES);
        }
        if (v[1] > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("stage_index=" + v[1] + " is too large");
        }
        return new CurriculumState(v[0], (int) v[1], v[2], v[3], v[4], v[5], v[6], Double.longBitsToDouble(v[7]), v[8],
                v[9]);
    }
}
