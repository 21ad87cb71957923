package io.moeflow.transport.rdma;

import java.io.IOException;
import java.nio.ByteBuffer;

/**
 * The few RDMA verbs the {@link RdmaTransport} protocol needs, so the protocol (handshake, credits,
 * chunking, completion handling, ordering, timeouts) is tested against {@link InMemoryVerbs} and
 * runs on hardware through {@link DisniVerbs}. One instance per rank; it owns one completion queue
 * shared by all of this rank's queue pairs. Driven by one thread at a time, like a transport.
 */
public interface Verbs extends AutoCloseable {
    /**
     * Registers the whole of a direct buffer for local access and remote write; called once per
     * region, never per message. A registration holds at most 2 GiB (an {@code int} length).
     */
    MemoryRegion register(ByteBuffer direct) throws IOException;

    /**
     * A reliable-connected queue pair to {@code peer}, connected within {@code timeoutNs} (the lower
     * rank accepts, the higher connects; the addresses come from the rendezvous).
     */
    QueuePair connect(int peer, long timeoutNs) throws IOException;

    /**
     * Moves up to {@code out.length} completions of this rank's queue pairs into {@code out}.
     * Completions of one queue pair come in the order of their work requests; those of different
     * queue pairs may interleave in any order.
     *
     * @return the number written
     */
    int poll(Completion[] out);

    /** One line for messages, e.g. {@code "disni rdma://10.0.0.1:7000"}. */
    String describe();

    /** Closes the queue pairs, deregisters the regions and frees the device context. */
    @Override
    void close();
}
