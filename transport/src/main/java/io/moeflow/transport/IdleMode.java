package io.moeflow.transport;

import java.util.concurrent.TimeUnit;

import org.agrona.concurrent.BackoffIdleStrategy;
import org.agrona.concurrent.IdleStrategy;

/** How a rank waits for data that has not arrived yet. */
public enum IdleMode {
    /**
     * Spin briefly, then yield, then park for growing periods up to {@code maxIdleParkNs}: the default,
     * because MoEFlow often runs more threads than cores and a spinning waiter steals the core that
     * the peer it waits for needs.
     */
    BACKOFF,
    /**
     * Spin briefly, then yield the core on every further idle round, never park: lowest latency, one
     * full core per waiting rank when cores are free, while a busy host still gets to run the peer
     * this rank waits for. For benchmarks.
     */
    SPIN;

    /** A new idle strategy of this mode: BACKOFF parks for at most {@code maxParkNs}; SPIN never parks. */
    public IdleStrategy newIdleStrategy(final long maxParkNs) {
        final long yieldNs = TimeUnit.MICROSECONDS.toNanos(1);
        return this == SPIN
            ? new BackoffIdleStrategy(100, Long.MAX_VALUE, yieldNs, yieldNs)
            : new BackoffIdleStrategy(64, 16, yieldNs, maxParkNs);
    }
}
