package io.moeflow.transport.inprocess;

import org.agrona.MutableDirectBuffer;
import org.agrona.concurrent.ControlledMessageHandler;
import org.agrona.concurrent.ringbuffer.RingBuffer;

import io.moeflow.transport.FrameAction;
import io.moeflow.transport.FrameHandler;
import io.moeflow.transport.PeerFailureException;
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
        this.claimIndex = new int[InProcessCluster.LANES * cluster.size()];
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
    public int maxFrameLength(final int peer) {
        return cluster.maxFrameLength();
    }

    @Override
    public int lanes() {
        return InProcessCluster.LANES;
    }

    @Override
    public int tryClaim(final int peer, final int lane, final int lengthBytes) {
        if (cluster.lost(peer, rank) != null) {
            return NOT_CONNECTED;
        }
        final int index = cluster.ring(lane, rank, peer).tryClaim(InProcessCluster.messageType(), lengthBytes);
        if (index < 0) {
            return BACK_PRESSURED;
        }
        claimIndex[lane * cluster.size() + peer] = index;
        return index;
    }

    @Override
    public MutableDirectBuffer claimBuffer(final int peer, final int lane) {
        return cluster.ring(lane, rank, peer).buffer();
    }

    @Override
    public void commit(final int peer, final int lane) {
        cluster.ring(lane, rank, peer).commit(claimIndex[lane * cluster.size() + peer]);
    }

    @Override
    public int poll(final int peer, final int lane, final FrameHandler handler, final int frameLimit) {
        final RingBuffer ring = cluster.ring(lane, peer, rank);
        adapter.handler = handler;
        return ring.controlledRead(adapter, frameLimit);
    }

    @Override
    public String peerLost(final int peer) {
        return cluster.lost(peer, rank);
    }

    @Override
    public PeerFailureException.Reason peerState(final int peer) {
        if (cluster.lost(peer, rank) == null) {
            return null;
        }
        return cluster.killed(peer) || cluster.killed(rank) ? PeerFailureException.Reason.DISCONNECTED
            : PeerFailureException.Reason.EXITED;
    }

    @Override
    public String localFailure() {
        return cluster.killed(rank) ? "this rank was killed" : null;
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
