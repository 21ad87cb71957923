package io.moeflow.transport;

/**
 * Live counters of one rank's transport. Written by the thread that drives the transport (one at a
 * time), readable from any thread. Bytes are wire bytes: headers and compressed payloads included.
 */
public final class TransportCounters {
    private static final java.util.concurrent.atomic.AtomicLongFieldUpdater<TransportCounters> FORGED =
        java.util.concurrent.atomic.AtomicLongFieldUpdater.newUpdater(TransportCounters.class, "forgedFramesDropped");

    private volatile long framesSent;
    private volatile long bytesSent;
    private volatile long framesReceived;
    private volatile long bytesReceived;
    private volatile long malformedFramesDropped;
    private volatile long unexpectedFramesDropped;
    private volatile long unauthenticatedFramesDropped;
    private volatile long handshakesRejected;
    /** Written by the transport's thread and by an embedded driver's receiver thread: updated atomically. */
    private volatile long forgedFramesDropped;
    private volatile long replayedFramesDropped;

    /** Records one frame sent. */
    public void onFrameSent(final int lengthBytes) {
        framesSent = framesSent + 1;
        bytesSent = bytesSent + lengthBytes;
    }

    /** Records one frame received and used. */
    public void onFrameReceived(final int lengthBytes) {
        framesReceived = framesReceived + 1;
        bytesReceived = bytesReceived + lengthBytes;
    }

    /** Records a frame dropped because it was too short, of an unknown version or kind, or inconsistent. */
    public void onMalformedFrame() {
        malformedFramesDropped = malformedFramesDropped + 1;
    }

    /** Records a well-formed frame dropped because no operation expects it (stale or duplicate). */
    public void onUnexpectedFrame() {
        unexpectedFramesDropped = unexpectedFramesDropped + 1;
    }

    /** Records a frame dropped because it came over a connection that never authenticated. */
    public void onUnauthenticatedFrame() {
        unauthenticatedFramesDropped = unauthenticatedFramesDropped + 1;
    }

    /** Records a handshake that failed authentication (wrong or missing job token, wrong job). */
    public void onHandshakeRejected() {
        handshakesRejected = handshakesRejected + 1;
    }

    /**
     * Records a frame dropped because its authentication tag is wrong or missing on a stream whose
     * frames must carry one (forged or altered on the wire). Any thread.
     */
    public void onForgedFrame() {
        FORGED.incrementAndGet(this);
    }

    /** Records an authenticated frame dropped because its sequence number was already seen (a replay). */
    public void onReplayedFrame() {
        replayedFramesDropped = replayedFramesDropped + 1;
    }

    public long forgedFramesDropped() {
        return forgedFramesDropped;
    }

    public long replayedFramesDropped() {
        return replayedFramesDropped;
    }

    public long framesSent() {
        return framesSent;
    }

    public long bytesSent() {
        return bytesSent;
    }

    public long framesReceived() {
        return framesReceived;
    }

    public long bytesReceived() {
        return bytesReceived;
    }

    public long malformedFramesDropped() {
        return malformedFramesDropped;
    }

    public long unexpectedFramesDropped() {
        return unexpectedFramesDropped;
    }

    public long unauthenticatedFramesDropped() {
        return unauthenticatedFramesDropped;
    }

    public long handshakesRejected() {
        return handshakesRejected;
    }

    @Override
    public String toString() {
        return "framesSent=" + framesSent + " bytesSent=" + bytesSent + " framesReceived=" + framesReceived
            + " bytesReceived=" + bytesReceived + " malformedDropped=" + malformedFramesDropped
            + " unexpectedDropped=" + unexpectedFramesDropped + " unauthenticatedDropped=" + unauthenticatedFramesDropped
            + " handshakesRejected=" + handshakesRejected + " forgedDropped=" + forgedFramesDropped
            + " replayedDropped=" + replayedFramesDropped;
    }
}
