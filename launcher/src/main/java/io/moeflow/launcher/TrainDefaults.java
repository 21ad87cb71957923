package io.moeflow.launcher;

/**
 * Defaults of {@code moeflow train} that belong to the run rather than to a component's config
 * record: chosen so that {@code ./moeflow train} with no arguments finishes in a few minutes on
 * two cores and shows the loss falling well below ln 256 and accuracy on the easy domains.
 */
final class TrainDefaults {
    /** Where runs go unless --runs-dir says otherwise (relative to the working directory). */
    static final String RUNS_DIR = "runs";
    /** 80-90 s at 45-55k tokens/s on 2 quiet cores: copy, reverse, pattern 93-97% exact match (docs/quickstart.md). */
    static final long STEPS = 4000;
    static final int BATCH_SIZE = 16;
    static final long SEED = 42;
    /** Enough held-out samples per domain for an accuracy to two digits, and a few seconds of evaluation. */
    static final int EVAL_SAMPLES = 200;
    /** The held-out loss 20 times in a default run: enough points for a curve, well under 1% of the time. */
    static final long EVAL_EVERY = 200;
    /** Held-out samples behind each logged held-out loss: a few forward passes of the training batch. */
    static final int EVAL_LOSS_SAMPLES = 256;
    /** A few checkpoints per default run; each async save costs the step only a memory copy. */
    static final long SAVE_EVERY = 1000;

    /** The thread count asked for, or one per core (the training thread counts as one). */
    static int threads(final Integer requested) {
        return requested == null ? Runtime.getRuntime().availableProcessors() : requested;
    }

    private TrainDefaults() {
    }
}
