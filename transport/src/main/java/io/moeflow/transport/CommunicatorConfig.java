package io.moeflow.transport;

import java.util.concurrent.TimeUnit;

/**
 * Settings of the collectives engine of one process. Defaults are in {@link #DEFAULT}; each is
 * explained on its accessor.
 *
 * @param opTimeoutNs              how long an operation may wait without any data moving before it fails
 *                                 with a {@link PeerFailureException}
 * @param smallAllReduceMaxBytes   all-reduce payloads up to this size use recursive doubling (latency
 *                                 optimal: log2(p) rounds); larger ones use the pipelined ring
 *                                 (bandwidth optimal: 2(p-1)/p of the data per rank)
 * @param smallBroadcastMaxBytes   broadcasts up to this size use a binomial tree; larger ones a pipelined chain
 * @param idleMode                 how a waiting rank idles
 * @param maxIdleParkNs            longest park of {@link IdleMode#BACKOFF}
 */
public record CommunicatorConfig(long opTimeoutNs, int smallAllReduceMaxBytes, int smallBroadcastMaxBytes,
                                 IdleMode idleMode, long maxIdleParkNs) {

    /**
     * Defaults: a 60 s operation timeout (a 64 MiB all-reduce over a slow 100 MB/s link still moves
     * data every few ms, and a dead peer surfaces a minute later instead of the 10-30 min of common
     * collective watchdogs); 64 KiB small-message limits (below that the per-round latency costs more
     * than the extra bytes of recursive doubling); backoff idling with 100 us parks (wakes fast enough
     * for anything larger than a few KB while costing about 1% of a core).
     */
    public static final CommunicatorConfig DEFAULT = new CommunicatorConfig(
        TimeUnit.SECONDS.toNanos(60), 64 * 1024, 64 * 1024, IdleMode.BACKOFF, TimeUnit.MICROSECONDS.toNanos(100));

    public CommunicatorConfig {
        if (opTimeoutNs <= 0) {
            throw new IllegalArgumentException("opTimeoutNs=" + opTimeoutNs + ": must be > 0");
        }
        if (smallAllReduceMaxBytes < 0) {
            throw new IllegalArgumentException("smallAllReduceMaxBytes=" + smallAllReduceMaxBytes + ": must be >= 0");
        }
        if (smallBroadcastMaxBytes < 0) {
            throw new IllegalArgumentException("smallBroadcastMaxBytes=" + smallBroadcastMaxBytes + ": must be >= 0");
        }
        if (idleMode == null) {
            throw new IllegalArgumentException("idleMode=null: give BACKOFF or SPIN");
        }
        if (maxIdleParkNs < 1_000 || maxIdleParkNs > TimeUnit.SECONDS.toNanos(1)) {
            throw new IllegalArgumentException("maxIdleParkNs=" + maxIdleParkNs + ": must be in [1000, 1e9]");
        }
    }

    /** Whether an all-reduce of {@code count} floats uses recursive doubling (else the ring); FP8 always uses the ring. */
    public boolean allReduceUsesRecursiveDoubling(final long count, final boolean compressed) {
        return !compressed && 4 * count <= smallAllReduceMaxBytes;
    }

    /** Whether a broadcast of {@code count} values uses the binomial tree (else the pipelined chain). */
    public boolean broadcastUsesTree(final long count) {
        return 4 * count <= smallBroadcastMaxBytes;
    }

    /** A copy with another operation timeout. */
    public CommunicatorConfig withOpTimeoutNs(final long timeoutNs) {
        return new CommunicatorConfig(timeoutNs, smallAllReduceMaxBytes, smallBroadcastMaxBytes, idleMode, maxIdleParkNs);
    }

    /** A copy with another idle mode. */
    public CommunicatorConfig withIdleMode(final IdleMode mode) {
        return new CommunicatorConfig(opTimeoutNs, smallAllReduceMaxBytes, smallBroadcastMaxBytes, mode, maxIdleParkNs);
    }

    /** A copy with other algorithm thresholds. */
    public CommunicatorConfig withSmallMessageLimits(final int allReduceMaxBytes, final int broadcastMaxBytes) {
        return new CommunicatorConfig(opTimeoutNs, allReduceMaxBytes, broadcastMaxBytes, idleMode, maxIdleParkNs);
    }
}
