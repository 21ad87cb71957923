package io.moeflow.transport.rdma;

import java.io.IOException;
import java.nio.ByteBuffer;

/** One rank's {@link Verbs} on an {@link InMemoryFabric}: for tests and simulations, no device needed. */
final class InMemoryVerbs implements Verbs {
    private final InMemoryFabric fabric;
    private final int rank;

    InMemoryVerbs(final InMemoryFabric fabric, final int rank) {
        this.fabric = fabric;
        this.rank = rank;
    }

    @Override
    public MemoryRegion register(final ByteBuffer direct) throws IOException {
        return fabric.register(rank, direct);
    }

    @Override
    public QueuePair connect(final int peer, final long timeoutNs) throws IOException {
        return fabric.connect(rank, peer, timeoutNs);
    }

    @Override
    public int poll(final Completion[] out) {
        return fabric.poll(rank, out);
    }

    @Override
    public String describe() {
        return "in-memory verbs rank " + rank + " of " + fabric.size();
    }

    @Override
    public void close() {
        fabric.close(rank);
    }
}
