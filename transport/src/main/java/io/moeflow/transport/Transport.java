package io.moeflow.transport;

import org.agrona.MutableDirectBuffer;

/**
 * Back-end SPI: reliable, ordered, message-oriented streams between this rank and every other rank
 * of a job. The collectives ({@link Communicators}) are written once against this interface; Aeron
 * IPC/UDP ({@code io.moeflow.transport.aeron}) and in-process threads
 * ({@code io.moeflow.transport.inprocess}) implement it.
 *
 * <p><b>Lanes.</b> Between every ordered pair of ranks there are {@link #lanes()} independent streams
 * (lanes): frames of one lane arrive in order, but a frame left at the head of one lane never holds
 * up another. Lane {@link #CONTROL_LANE} carries control frames ({@link Wire#KIND_ABORT}); the
 * engine maps the urgent and the bulk operations of its groups to the others.
 *
 * <p>Contract: frames sent to a peer on a lane arrive at that peer complete, once, and in order;
 * every method is non-blocking and allocation-free; a transport is driven by one thread at a time
 * (the engine hands it over with a happens-before edge). Frames from connections that failed
 * authentication are never passed to handlers: back-ends drop and count them.
 */
public interface Transport extends AutoCloseable {
    /** {@link #tryClaim} result: the peer is not draining fast enough; retry later. */
    int BACK_PRESSURED = -2;
    /** {@link #tryClaim} result: no connection to the peer (yet, or any more). */
    int NOT_CONNECTED = -1;
    /** {@link #tryClaim} result: the stream is closed for good. */
    int CLOSED = -4;

    /** The lane of control frames, read by the engine whatever operations it runs. */
    int CONTROL_LANE = 0;

    /** This rank, in [0, size). */
    int rank();

    /** Number of ranks in the job. */
    int size();

    /**
     * Largest frame, header included, that {@link #tryClaim} accepts to {@code peer} (not this rank).
     * Peers may differ (Aeron HYBRID: a whole IPC term-sized frame to a rank of this node, one UDP MTU
     * to the others); both ends of a pair see the same length, and a receiver accepts any frame up
     * to it. Constant for the transport's life.
     */
    int maxFrameLength(int peer);

    /** Lanes per ordered pair of ranks, at least 2 (the control lane and one data lane). */
    int lanes();

    /**
     * Claims space for one frame of {@code lengthBytes} to {@code peer} on {@code lane}.
     *
     * @return the offset of the frame in {@link #claimBuffer(int, int)}, or {@link #BACK_PRESSURED},
     *     {@link #NOT_CONNECTED} or {@link #CLOSED}
     */
    int tryClaim(int peer, int lane, int lengthBytes);

    /** The buffer of the last successful claim to {@code peer} on {@code lane}. */
    MutableDirectBuffer claimBuffer(int peer, int lane);

    /** Publishes the frame claimed to {@code peer} on {@code lane}. */
    void commit(int peer, int lane);

    /**
     * Delivers up to {@code frameLimit} frames from {@code peer}'s {@code lane} to {@code handler}, in order.
     *
     * @return the number of frames consumed (dropped frames count)
     */
    int poll(int peer, int lane, FrameHandler handler, int frameLimit);

    /**
     * Why the streams from {@code peer} can deliver nothing more, or null while they are alive. A
     * peer that closed normally is only reported once all its frames were consumed.
     */
    String peerLost(int peer);

    /**
     * How {@code peer} was lost, or null while it is alive: {@link PeerFailureException.Reason#EXITED}
     * if it closed its end normally (said goodbye), {@link PeerFailureException.Reason#DISCONNECTED}
     * if its streams went away without a goodbye (killed, crashed, network lost). Call after polling
     * the peer's control lane, where the goodbye arrives.
     */
    PeerFailureException.Reason peerState(int peer);

    /**
     * Why this rank's own end stopped working (for example its Aeron client lost the media driver),
     * or null while it works. While this is not null, {@link #peerState} says nothing reliable.
     */
    String localFailure();

    /**
     * Background duties while the caller waits (for example draining and counting frames of
     * unauthenticated connections). Cheap to call often.
     *
     * @return work done, 0 if none
     */
    int doHousekeeping();

    /** Counters of frames and bytes moved and of frames dropped or rejected. */
    TransportCounters counters();

    /** One-line description for messages, e.g. {@code "aeron-ipc:/dev/shm/moeflow-x"}. */
    String describe();

    /** Releases the streams; after a healthy run, first lets peers drain what this rank sent. */
    @Override
    void close();
}
