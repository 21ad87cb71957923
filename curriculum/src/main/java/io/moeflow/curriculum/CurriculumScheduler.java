package io.moeflow.curriculum;

import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Locale;
import java.util.Objects;

/**
 * Decides each training step's batch: which samples (by difficulty), packed into rows, and the learning rate.
 *
 * <p>Packing: each of the B rows holds T+1 tokens (bytes). Samples are drawn one at a time and appended, each
 * ending in {@code '\n'}; the sample that crosses the row end is cut there, and the next row starts with a fresh
 * sample. The model reads inputs {@code row[0..T)} and targets {@code row[1..T]}.
 *
 * <p>Sampling: each sample is drawn uniformly from an index range of the difficulty-sorted training set:
 * <ul>
 *   <li>STAGED: the current stage's range [min, max); with probability {@code replayFraction} instead from the
 *       easier samples [0, min) (none for the first stage). Stages advance by steps or tokens; the last one lasts.</li>
 *   <li>FIXED_LINEAR / FIXED_ROOT / FIXED_DISCRETE: the samples with difficulty {@code <= d / difficultyScale},
 *       d = the DeepSpeed pacing value ({@link Pacing}) at the 1-based global step {@code step + 1}
 *       (DeepSpeed's engine calls its scheduler with {@code global_steps + 1}).</li>
 *   <li>NONE: all samples, uniformly (with replacement).</li>
 *   <li>SHUFFLE: all samples, each once per epoch in an order drawn afresh for every epoch (Fisher-Yates from a
 *       generator seeded with the config seed and the epoch number, so it depends on nothing else).</li>
 * </ul>
 * The ranges come from binary searches on the sorted difficulties; {@link #next} allocates nothing.
 *
 * <p>Determinism: the token stream depends only on the config (seed included), the dataset, B and T.
 * {@link #state()} captures the position and RNG; {@link #restore} continues bit for bit. Not thread-safe.
 */
public final class CurriculumScheduler {
    private final CurriculumConfig config;
    private final CurriculumConfig.Kind kind;
    private final Dataset data;
    private final int batchSize;
    private final int seqLen;
    private final int rowLength;
    private final long tokensPerStep;
    private final long configFingerprint;
    private final SplitMix64 rng;
    /** Where the rows of other data-parallel shards are drawn (and discarded). */
    private final int[] otherShardRow;

    // STAGED: per stage, the sample index range [stageLo, stageHi) and its settings.
    private final int[] stageLo;
    private final int[] stageHi;
    private final String[] stageNames;
    private final double[] stageLr;
    private final double[] stageMax;
    private final long[] stageLengthSteps;
    private final long[] stageLengthTokens;
    // Pacing: the discrete schedule as arrays, and a name for every pacing value 0..difficultyScale.
    private final int[] discreteDifficulties;
    private final long[] discreteMaxSteps;
    private final String[] pacingNames;
    // SHUFFLE: the current epoch's order of the samples, and which epoch it is (-1: none yet).
    private final int[] permutation;
    private final SplitMix64 permutationRng = new SplitMix64(0);
    private long permutationEpoch = -1;

    private long step;
    private int stageIndex;
    private long stepsInStage;
    private long tokensInStage;
    private long samplesConsumed;
    private long tokensConsumed;
    private double currentDifficulty;

    /**
     * @param config    the curriculum
     * @param training  the samples to draw from (usually {@link Dataset#training()}); must be non-empty, and every
     *                  stage / the first pacing step must find at least one sample
     * @param batchSize B, rows per step, >= 1
     * @param seqLen    T, each row holds T+1 tokens, >= 1
     */
    public CurriculumScheduler(final CurriculumConfig config, final Dataset training, final int batchSize,
                               final int seqLen) {
        this.config = Objects.requireNonNull(config, "config");
        this.data = Objects.requireNonNull(training, "training");
        this.kind = config.kind();
        if (batchSize < 1 || seqLen < 1 || (long) batchSize * (seqLen + 1) > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("batchSize=" + batchSize + ", seqLen=" + seqLen
                    + " must be >= 1 with batchSize*(seqLen+1) fitting an int array");
        }
        if (training.size() == 0) {
            throw new IllegalArgumentException("training dataset " + training.source() + " has no samples");
        }
        this.batchSize = batchSize;
        this.seqLen = seqLen;
        this.rowLength = seqLen + 1;
        this.otherShardRow = new int[rowLength];
        this.tokensPerStep = (long) batchSize * seqLen;
        this.rng = new SplitMix64(config.seed());

        final List<Stage> stages = config.stages();
        final int s = stages.size();
        stageLo = new int[s];
        stageHi = new int[s];
        stageNames = new String[s];
        stageLr = new double[s];
        stageMax = new double[s];
        stageLengthSteps = new long[s];
        stageLengthTokens = new long[s];
        for (int i = 0; i < s; i++) {
            final Stage st = stages.get(i);
            stageLo[i] = training.lowerBound(st.minDifficulty());
            stageHi[i] = st.maxDifficulty() == 1.0 ? training.size() : training.lowerBound(st.maxDifficulty());
            stageNames[i] = st.name();
            stageLr[i] = st.lr();
            stageMax[i] = st.maxDifficulty();
            stageLengthSteps[i] = st.lengthSteps();
            stageLengthTokens[i] = st.lengthTokens();
            if (kind == CurriculumConfig.Kind.STAGED && stageLo[i] >= stageHi[i]) {
                throw new IllegalArgumentException("stage " + st.name() + " [" + st.minDifficulty() + ", "
                        + st.maxDifficulty() + ") has no samples in " + training.source()
                        + "; widen its difficulty range or add samples of that difficulty");
            }
        }
        discreteDifficulties = config.discreteDifficultyArray();
        discreteMaxSteps = config.discreteMaxStepArray();
        pacingNames = new String[config.difficultyScale() + 1];
        final String kindName = kind.name().toLowerCase(Locale.ROOT);
        for (int d = 0; d <= config.difficultyScale(); d++) {
            pacingNames[d] = kindName + "<=" + formatDifficulty(d / (double) config.difficultyScale());
        }
        if (isPacing()) {
            final int first = pacingDifficulty(1);
            if (training.upperBound(first / (double) config.difficultyScale()) == 0) {
                throw new IllegalArgumentException("kind=" + kind + " accepts difficulty <= " + first + "/"
                        + config.difficultyScale() + " at step 1, but no sample in " + training.source()
                        + " is that easy (easiest: " + training.difficulty(0) + "); raise the starting difficulty");
            }
        }
        this.permutation = kind == CurriculumConfig.Kind.SHUFFLE ? new int[training.size()] : null;
        this.configFingerprint = fingerprint(config, batchSize, seqLen);
        this.currentDifficulty = initialDifficulty();
    }

    /**
     * Plans the next step: fills {@code tokens} with B packed rows of T+1 tokens and {@code plan} with the step's
     * stage, learning rate and counters. Allocates nothing.
     *
     * @param tokens [B*(T+1)] token ids 0..255, row-major
     */
    public void next(final int[] tokens, final StepPlan plan) {
        next(tokens, plan, 0, 1);
    }

    /**
     * Plans the next step of a data-parallel job: draws the whole global batch of B rows exactly as
     * {@link #next(int[], StepPlan)} does (same samples, stage, learning rate and counters on every
     * shard), but keeps only rows {@code [shard*B/shards, (shard+1)*B/shards)} in {@code tokens}. The
     * shards of one step are disjoint and together are the one-process batch, in row order.
     * Allocates nothing.
     *
     * @param tokens [B/shards*(T+1)] token ids of this shard's rows, row-major
     * @param shard  this shard, in [0, shards)
     * @param shards how many shards (ranks) split the batch; must divide B
     */
    public void next(final int[] tokens, final StepPlan plan, final int shard, final int shards) {
        if (shards < 1 || shard < 0 || shard >= shards || batchSize % shards != 0) {
            throw new IllegalArgumentException("shard=" + shard + " of shards=" + shards + ": need 0 <= shard < shards"
                    + " and shards dividing batchSize=" + batchSize);
        }
        final int rows = batchSize / shards;
        if (tokens.length != rows * rowLength) {
            throw new IllegalArgumentException("tokens.length=" + tokens.length + " must be (batchSize/shards)*(seqLen+1)="
                    + rows * rowLength);
        }
        final int lo;
        final int hi;
        int replayHi = 0;
        int reportedStage = 0;
        final String name;
        double lr = Double.NaN;
        switch (kind) {
            case STAGED:
                advanceStageIfDone();
                lo = stageLo[stageIndex];
                hi = stageHi[stageIndex];
                replayHi = lo;
                reportedStage = stageIndex;
                name = stageNames[stageIndex];
                lr = stageLr[stageIndex];
                currentDifficulty = stageMax[stageIndex];
                break;
            case FIXED_LINEAR:
            case FIXED_ROOT:
            case FIXED_DISCRETE:
                final int d = pacingDifficulty(step + 1);
                currentDifficulty = d / (double) config.difficultyScale();
                lo = 0;
                hi = data.upperBound(currentDifficulty);
                name = pacingNames[d];
                if (kind == CurriculumConfig.Kind.FIXED_DISCRETE) {
                    reportedStage = Pacing.discreteLevel(step + 1, discreteMaxSteps);
                }
                break;
            default:
                lo = 0;
                hi = data.size();
                name = kind == CurriculumConfig.Kind.SHUFFLE ? "shuffle" : "none";
                currentDifficulty = 1.0;
                break;
        }
        final int firstRow = shard * rows;
        for (int row = 0; row < batchSize; row++) {
            if (row >= firstRow && row < firstRow + rows) {
                fillRow(tokens, (row - firstRow) * rowLength, lo, hi, replayHi);
            } else {
                fillRow(otherShardRow, 0, lo, hi, replayHi); // drawn to keep the RNG in step, then dropped
            }
        }
        stepsInStage++;
        tokensInStage += tokensPerStep;
        tokensConsumed += tokensPerStep;
        plan.set(step, reportedStage, name, lr, currentDifficulty, samplesConsumed, tokensConsumed);
        step++;
    }

    /** Appends samples to {@code tokens[start .. start+T+1)} until the row is full; the last one is cut. */
    private void fillRow(final int[] tokens, final int start, final int lo, final int hi, final int replayHi) {
        final byte[] bytes = data.bytes;
        final int[] offsets = data.offsets;
        final double replay = config.replayFraction();
        int pos = 0;
        while (pos < rowLength) {
            final int i;
            if (permutation != null) {
                i = shuffled(samplesConsumed);
            } else if (replayHi > 0 && replay > 0.0 && rng.nextDouble() < replay) {
                i = rng.nextInt(replayHi); // an easier sample, from [0, stage min)
            } else {
                i = lo + rng.nextInt(hi - lo);
            }
            samplesConsumed++;
            final int from = offsets[i];
            final int n = Math.min(offsets[i + 1] - from, rowLength - pos);
            for (int j = 0; j < n; j++) {
                tokens[start + pos + j] = bytes[from + j] & 0xFF;
            }
            pos += n;
        }
    }

    /** SHUFFLE: the sample at position {@code consumed} of the stream of epochs; reshuffles once per epoch. */
    private int shuffled(final long consumed) {
        final int n = permutation.length;
        final long epoch = consumed / n;
        if (epoch != permutationEpoch) {
            // a function of (seed, epoch) only, so a restored scheduler rebuilds the same order mid-epoch
            permutationRng.setState(SplitMix64.mix(config.seed() ^ SplitMix64.mix(epoch + 1)));
            for (int k = 0; k < n; k++) {
                permutation[k] = k;
            }
            for (int k = n - 1; k > 0; k--) {
                final int j = permutationRng.nextInt(k + 1);
                final int t = permutation[k];
                permutation[k] = permutation[j];
                permutation[j] = t;
            }
            permutationEpoch = epoch;
        }
        return permutation[(int) (consumed % n)];
    }

    private void advanceStageIfDone() {
        while (stageIndex < stageLo.length - 1 && stageDone()) {
            stageIndex++;
            stepsInStage = 0;
            tokensInStage = 0;
        }
    }

    private boolean stageDone() {
        return stageLengthSteps[stageIndex] > 0 ? stepsInStage >= stageLengthSteps[stageIndex]
                : tokensInStage >= stageLengthTokens[stageIndex];
    }

    /**
     * The pacing value (max accepted difficulty on the integer scale) at 1-based {@code globalStep} for the pacing
     * kinds, {@code difficultyScale} for STAGED and NONE, which do not pace.
     */
    public int pacingDifficulty(final long globalStep) {
        switch (kind) {
            case FIXED_LINEAR:
                return Pacing.fixedRoot(globalStep, config.totalCurriculumSteps(), config.minDifficulty(),
                        config.maxDifficulty(), config.difficultyStep(), 1);
            case FIXED_ROOT:
                return Pacing.fixedRoot(globalStep, config.totalCurriculumSteps(), config.minDifficulty(),
                        config.maxDifficulty(), config.difficultyStep(), config.rootDegree());
            case FIXED_DISCRETE:
                return Pacing.fixedDiscrete(globalStep, discreteDifficulties, discreteMaxSteps);
            default:
                return config.difficultyScale();
        }
    }

    /** The scheduler's position, counters and RNG state, for a checkpoint. */
    public CurriculumState state() {
        return new CurriculumState(step, stageIndex, stepsInStage, tokensInStage, samplesConsumed, tokensConsumed,
                rng.state(), currentDifficulty, data.fingerprint(), configFingerprint);
    }

    /**
     * Continues from a saved state: the following {@link #next} calls produce exactly what the saving scheduler's
     * would have. The state must come from a scheduler with the same config, B, T and training set.
     *
     * @throws IllegalArgumentException when the state belongs to another dataset or config
     */
    public void restore(final CurriculumState state) {
        if (state.datasetFingerprint() != data.fingerprint()) {
            throw new IllegalArgumentException("curriculum state was saved for another training set (fingerprint "
                    + Long.toHexString(state.datasetFingerprint()) + ", this one is "
                    + Long.toHexString(data.fingerprint()) + "); resume with the same data files, generator config"
                    + " and held-out split");
        }
        if (state.configFingerprint() != configFingerprint) {
            throw new IllegalArgumentException("curriculum state was saved with another curriculum config, batch size"
                    + " or sequence length (fingerprint " + Long.toHexString(state.configFingerprint()) + ", this is "
                    + Long.toHexString(configFingerprint) + "); resume with the run's saved config");
        }
        if (state.stageIndex() >= Math.max(1, stageLo.length)) {
            throw new IllegalArgumentException("stageIndex=" + state.stageIndex() + " but the config has "
                    + stageLo.length + " stages");
        }
        step = state.step();
        stageIndex = state.stageIndex();
        stepsInStage = state.stepsInStage();
        tokensInStage = state.tokensInStage();
        samplesConsumed = state.samplesConsumed();
        tokensConsumed = state.tokensConsumed();
        rng.setState(state.rngState());
        currentDifficulty = state.currentDifficulty();
    }

    /** The config this scheduler runs. */
    public CurriculumConfig config() {
        return config;
    }

    /** B, rows per step. */
    public int batchSize() {
        return batchSize;
    }

    /** T, tokens per row minus one. */
    public int seqLen() {
        return seqLen;
    }

    /** Trained tokens per step, B*T. */
    public long tokensPerStep() {
        return tokensPerStep;
    }

    private boolean isPacing() {
        return kind == CurriculumConfig.Kind.FIXED_LINEAR || kind == CurriculumConfig.Kind.FIXED_ROOT
                || kind == CurriculumConfig.Kind.FIXED_DISCRETE;
    }

    private double initialDifficulty() {
        if (kind == CurriculumConfig.Kind.STAGED) {
            return stageMax[0];
        }
        return isPacing() ? pacingDifficulty(1) / (double) config.difficultyScale() : 1.0;
    }

    private static String formatDifficulty(final double d) {
        return String.format(Locale.ROOT, "%.2f", d);
    }

    private static long fingerprint(final CurriculumConfig config, final int batchSize, final int seqLen) {
        final byte[] text = (config + "|B=" + batchSize + "|T=" + seqLen).getBytes(StandardCharsets.UTF_8);
        return SplitMix64.hash(0, text, 0, text.length);
    }
}
