package io.moeflow.transport;

import org.agrona.MutableDirectBuffer;

/**
 * Back-end SPI: reliable, ordered, message-oriented streams between this rank and every other rank
 * of a job. The collectives ({@link Communicators}) are written once against this interface; Aeron
 * IPC/UDP ({@code io.moeflow.transport.aeron}) and in-process threads
 * ({@code io.moeflow.transport.inprocess}) implement it.
 *
 * <p>Contract: frames sent to a peer arrive at that peer complete, once, and in order; every method
 * is non-blocking and allocation-free; a transport is driven by one thread at a time (the engine
 * hands it over with a happens-before edge). Frames from connections that failed authentication
 * are never passed to handlers: back-ends drop and count them.
 */
public interface Transport extends AutoCloseable {
    /** {@link #tryClaim} result: the peer is not draining fast enough; retry later. */
    int BACK_PRESSURED = -2;
    /** {@link #tryClaim} result: no connection to the peer (yet, or any more). */
    int NOT_CONNECTED = -1;
    /** {@link #tryClaim} result: the stream is closed for good. */
    int CLOSED = -4;

    /** This rank, in [0, size). */
    int rank();

    /** Number of ranks in the job. */
    int size();

    /** Largest frame, header included, that {@link #tryClaim} accepts. */
    int maxFrameLength();

    /**
     * Claims space for one frame of {@code lengthBytes} to {@code peer}.
     *
     * @return the offset of the frame in {@link #claimBuffer(int)}, or {@link #BACK_PRESSURED},
     *     {@link #NOT_CONNECTED} or {@link #CLOSED}
     */
    int tryClaim(int peer, int lengthBytes);

    /** The buffer of the last successful claim to {@code peer}. */
    MutableDirectBuffer claimBuffer(int peer);

    /** Publishes the claimed frame. */
    void commit(int peer);

    /**
     * Delivers up to {@code frameLimit} frames from {@code peer} to {@code handler}, in order.
     *
     * @return the number of frames consumed (dropped frames count)
     */
    int poll(int peer, FrameHandler handler, int frameLimit);

    /**
     * Why the stream from {@code peer} can deliver nothing more, or null while it is alive. A peer
     * that closed normally is only reported once all its frames were consumed.
     */
    String peerLost(int peer);

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
