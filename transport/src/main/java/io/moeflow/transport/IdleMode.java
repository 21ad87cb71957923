package io.moeflow.transport;

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
    SPIN
}
