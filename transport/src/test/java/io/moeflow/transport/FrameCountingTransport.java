package io.moeflow.transport;

import org.agrona.MutableDirectBuffer;

/**
 * A {@link Transport} that passes everything to another one and counts the data frames (every lane
 * but the control lane) and their bytes sent to each peer: how a collective chunked its payload.
 * Counts are read after the ranks' threads joined.
 */
public final class FrameCountingTransport implements Transport {
    private final Transport inner;
    private final long[] frames;
    private final long[] bytes;
    private final int[][] claimed;

    public FrameCountingTransport(final Transport inner) {
        this.inner = inner;
        this.frames = new long[inner.size()];
        this.bytes = new long[inner.size()];
        this.claimed = new int[inner.size()][inner.lanes()];
    }

    /** Data frames sent to {@code peer} so far. */
    public long framesTo(final int peer) {
        return frames[peer];
    }

    /** Bytes of the data frames sent to {@code peer} so far, headers included. */
    public long bytesTo(final int peer) {
        return bytes[peer];
    }

    @Override
    public int rank() {
        return inner.rank();
    }

    @Override
    public int size() {
        return inner.size();
    }

    @Override
    public int maxFrameLength(final int peer) {
        return inner.maxFrameLength(peer);
    }

    @Override
    public int lanes() {
        return inner.lanes();
    }

    @Override
    public int tryClaim(final int peer, final int lane, final int lengthBytes) {
        final int offset = inner.tryClaim(peer, lane, lengthBytes);
        if (offset >= 0) {
            claimed[peer][lane] = lengthBytes;
        }
        return offset;
    }

    @Override
    public MutableDirectBuffer claimBuffer(final int peer, final int lane) {
        return inner.claimBuffer(peer, lane);
    }

    @Override
    public void commit(final int peer, final int lane) {
        inner.commit(peer, lane);
        if (lane != CONTROL_LANE) {
            frames[peer]++;
            bytes[peer] += claimed[peer][lane];
        }
    }

    @Override
    public int poll(final int peer, final int lane, final FrameHandler handler, final int frameLimit) {
        return inner.poll(peer, lane, handler, frameLimit);
    }

    @Override
    public String peerLost(final int peer) {
        return inner.peerLost(peer);
    }

    @Override
    public PeerFailureException.Reason peerState(final int peer) {
        return inner.peerState(peer);
    }

    @Override
    public String localFailure() {
        return inner.localFailure();
    }

    @Override
    public int doHousekeeping() {
        return inner.doHousekeeping();
    }

    @Override
    public TransportCounters counters() {
        return inner.counters();
    }

    @Override
    public String describe() {
        return inner.describe();
    }

    @Override
    public void close() {
        inner.close();
    }
}
