package io.moeflow.transport.inprocess;

import org.agrona.MutableDirectBuffer;
import org.agrona.concurrent.ControlledMessageHandler;
import org.agrona.concurrent.ringbuffer.RingBuffer;

import io.moeflow.transport.FrameAction;
import io.moeflow.transport.FrameHandler;
import io.moeflow.transport.Transport;
import io.moeflow.transport.TransportCounters;

/** One rank's end of an {@link InProcessCluster}. */
final class InProcessTransport implements Transport {
    private final InProcessCluster cluster;
    private final int rank;
    private final TransportCounters counters = new TransportCounters();
    private final int[] claimIndex;
    private final Adapter adapter = new Adapter();

    InProcessTransport(final InProcessCluster cluster, final int rank) {
        this.cluster = cluster;
        this.rank = rank;
        this.claimIndex = new int[cluster.size()];
    }

    /** Turns the ring's callback into a {@link FrameHandler} call without allocating. */
    private static final class Adapter implements ControlledMessageHandler {
        FrameHandler handler;

        @Override
        public Action onMessage(final int msgTypeId, final MutableDirectBuffer buffer, final int index, final int length) {
            final FrameAction action = handler.onFrame(buffer, index, length);
            return action == FrameAction.CONTINUE ? Action.CONTINUE : action == FrameAction.BREAK ? Action.BREAK : Action.ABORT;
        }
    }

    @Override
    public int rank() {
        return rank;
    }

    @Override
    public int size() {
        return cluster.size();
    }

    @Override
    public int maxFrameLength() {
        return cluster.maxFrameLength();
    }

    @Override
    public int tryClaim(final int peer, final int lengthBytes) {
        if (cluster.lost(peer, rank) != null) {
            return NOT_CONNECTED;
        }
        final int index = cluster.ring(rank, peer).tryClaim(InProcessCluster.messageType(), lengthBytes);
        if (index < 0) {
            return BACK_PRESSURED;
        }
        claimIndex[peer] = index;
        return index;
    }

    @Override
    public MutableDirectBuffer claimBuffer(final int peer) {
        return cluster.ring(rank, peer).buffer();
    }

    @Override
    public void commit(final int peer) {
        cluster.ring(rank, peer).commit(claimIndex[peer]);
    }

    @Override
    public int poll(final int peer, final FrameHandler handler, final int frameLimit) {
        final RingBuffer ring = cluster.ring(peer, rank);
        adapter.handler = handler;
        return ring.controlledRead(adapter, frameLimit);
    }

    @Override
    public String peerLost(final int peer) {
        return cluster.lost(peer, rank);
    }

    @Override
    public int doHousekeeping() {
        return 0;
    }

    @Override
    public TransportCounters counters() {
        return counters;
    }

    @Override
    public String describe() {
        return "in-process rank " + rank + " of " + cluster.size();
    }

    @Override
    public void close() {
        cluster.markClosed(rank);
    }
}
