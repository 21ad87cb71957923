package io.moeflow.checkpoint;

/**
 * The cross-rank step of a sharded save or resume, supplied by the trainer (the checkpoint module knows nothing of
 * the transport). Every rank calls it at the same point with one value and gets every rank's value back, in rank
 * order: an all-gather, which also serves as the barrier after which rank 0 commits, and as the broadcast of the
 * resume step rank 0 chose.
 *
 * <p>The writer calls it only on the thread that calls the writer (the training thread), never on its background
 * thread, so an implementation over a communicator that must be used from one thread is fine. Implementations must
 * not wait forever: a rank that does not arrive within the implementation's timeout, or that died, makes the call
 * throw on every other rank.
 */
@FunctionalInterface
public interface RankExchange {
    /**
     * @param value this rank's value
     * @return the values of ranks 0 to W-1
     */
    long[] allGather(long value);
}
