package io.moeflow.transport.inprocess;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicIntegerArray;
import java.util.concurrent.atomic.AtomicReferenceArray;

import org.agrona.BufferUtil;
import org.agrona.DirectBuffer;
import org.agrona.concurrent.UnsafeBuffer;
import org.agrona.concurrent.ringbuffer.ManyToOneRingBuffer;
import org.agrona.concurrent.ringbuffer.RingBuffer;
import org.agrona.concurrent.ringbuffer.RingBufferDescriptor;

import io.moeflow.transport.Communicator;
import io.moeflow.transport.CommunicatorConfig;
import io.moeflow.transport.Communicators;
import io.moeflow.transport.Transport;

/**
 * A job whose ranks are threads of this JVM: every ordered pair of ranks gets one ring buffer in
 * direct memory per lane ({@link #LANES}: a small control lane and four data lanes, each made on
 * first use). Frames go through exactly the same engine and wire format as the Aeron back-ends,
 * so unit tests of the collectives are fast and exercise the real code paths (simulations use it
 * too). The rings are many-to-one so that tests can {@link #inject} frames next to a real sender.
 */
public final class InProcessCluster implements AutoCloseable {
    /**
     * Ring capacity per ordered pair: 1 MiB, a few dozen maximal frames in flight, so a sender
     * rarely waits; a 16-rank cluster uses 240 MiB of direct memory.
     */
    public static final int DEFAULT_RING_CAPACITY_BYTES = 1 << 20;
    /** Largest frame: 64 KiB, the Aeron IPC maximum too, so both back-ends chunk alike. */
    public static final int DEFAULT_MAX_FRAME_LENGTH = 64 * 1024;
    /** Lanes per ordered pair: the control lane, the urgent lane and three bulk lanes (as Aeron). */
    public static final int LANES = 5;
    /** The lane the job-wide communicator's (bulk) operations use: the first bulk lane. */
    public static final int JOB_WIDE_LANE = 2;
    /** The control lane carries only small ABORT frames. */
    private static final int CONTROL_RING_CAPACITY_BYTES = 64 * 1024;

    private static final int MESSAGE_TYPE = 1;

    private final int size;
    private final int maxFrameLength;
    private final int ringCapacityBytes;
    /** Ring of (lane, from, to) at {@code (lane * size + from) * size + to}, made on first use. */
    private final AtomicReferenceArray<RingBuffer> rings;
    private final InProcessTransport[] transports;
    /** Per rank: {@link #ALIVE}, {@link #CLOSED} or {@link #KILLED}; read on every frame, so lock-free. */
    private final AtomicIntegerArray state;
    private static final int ALIVE = 0;
    private static final int CLOSED = 1;
    private static final int KILLED = 2;

    private InProcessCluster(final int size, final int ringCapacityBytes, final int maxFrameLength) {
        if (size < 1) {
            throw new IllegalArgumentException("size=" + size + ": must be >= 1");
        }
        if (Integer.bitCount(ringCapacityBytes) != 1 || ringCapacityBytes < 4096) {
            throw new IllegalArgumentException("ringCapacityBytes=" + ringCapacityBytes + ": must be a power of two >= 4096");
        }
        if (maxFrameLength < 256 || maxFrameLength > ringCapacityBytes / 8) {
            throw new IllegalArgumentException("maxFrameLength=" + maxFrameLength + ": must be in [256, ringCapacityBytes/8="
                + ringCapacityBytes / 8 + "]");
        }
        this.size = size;
        this.maxFrameLength = maxFrameLength;
        this.ringCapacityBytes = ringCapacityBytes;
        this.rings = new AtomicReferenceArray<>(LANES * size * size);
        this.state = new AtomicIntegerArray(size);
        transports = new InProcessTransport[size];
        for (int r = 0; r < size; r++) {
            transports[r] = new InProcessTransport(this, r);
        }
    }

    /** A cluster with the default ring capacity and frame length. */
    public static InProcessCluster create(final int size) {
        return new InProcessCluster(size, DEFAULT_RING_CAPACITY_BYTES, DEFAULT_MAX_FRAME_LENGTH);
    }

    /** A cluster with small rings or frames, e.g. to exercise chunking and back-pressure in tests. */
    public static InProcessCluster create(final int size, final int ringCapacityBytes, final int maxFrameLength) {
        return new InProcessCluster(size, ringCapacityBytes, maxFrameLength);
    }

    public int size() {
        return size;
    }

    /** The transport of one rank (give each to the thread that plays that rank). */
    public Transport transport(final int rank) {
        return transports[rank];
    }

    /** One job-wide communicator per rank. */
    public List<Communicator> communicators(final CommunicatorConfig config) {
        final List<Communicator> list = new ArrayList<>(size);
        for (int r = 0; r < size; r++) {
            list.add(Communicators.create(transports[r], config));
        }
        return list;
    }

    /**
     * Test hook: puts raw bytes into the stream from {@code from} to {@code to}, as a faulty or
     * hostile writer would, on the lane of the job-wide communicator's operations. Returns false if
     * the ring is full.
     */
    public boolean inject(final int from, final int to, final DirectBuffer frame, final int offset, final int length) {
        return inject(from, to, JOB_WIDE_LANE, frame, offset, length);
    }

    /** Test hook: as {@link #inject(int, int, DirectBuffer, int, int)}, on a given lane. */
    public boolean inject(final int from, final int to, final int lane, final DirectBuffer frame, final int offset,
                          final int length) {
        return ring(lane, from, to).write(MESSAGE_TYPE, frame, offset, length);
    }

    /** Test hook: the rank dies now; its peers see its streams lost at once, frames in flight included. */
    public void kill(final int rank) {
        state.set(rank, KILLED);
    }

    void markClosed(final int rank) {
        state.compareAndSet(rank, ALIVE, CLOSED);
    }

    String lost(final int peer, final int rank) {
        final int peerState = state.get(peer);
        if (peerState == KILLED) {
            return "rank " + peer + " died";
        }
        if (peerState == CLOSED && drained(peer, rank)) {
            return "rank " + peer + " closed its transport";
        }
        if (state.get(rank) == KILLED) {
            return "this rank was killed";
        }
        return null;
    }

    /** Whether the peer was killed (true), closed (false); only meaningful once {@link #lost} is not null. */
    boolean killed(final int peer) {
        return state.get(peer) == KILLED;
    }

    private boolean drained(final int from, final int to) {
        for (int lane = 0; lane < LANES; lane++) {
            final RingBuffer ring = rings.get((lane * size + from) * size + to);
            if (ring != null && ring.size() != 0) {
                return false;
            }
        }
        return true;
    }

    RingBuffer ring(final int lane, final int from, final int to) {
        final int index = (lane * size + from) * size + to;
        final RingBuffer ring = rings.get(index);
        return ring != null ? ring : newRing(index, lane == 0 ? CONTROL_RING_CAPACITY_BYTES : ringCapacityBytes);
    }

    private synchronized RingBuffer newRing(final int index, final int capacityBytes) {
        RingBuffer ring = rings.get(index);
        if (ring == null) {
            final int length = capacityBytes + RingBufferDescriptor.TRAILER_LENGTH;
            ring = new ManyToOneRingBuffer(new UnsafeBuffer(BufferUtil.allocateDirectAligned(length, 64)));
            rings.set(index, ring);
        }
        return ring;
    }

    int maxFrameLength() {
        return maxFrameLength;
    }

    static int messageType() {
        return MESSAGE_TYPE;
    }

    /** Marks every rank closed. */
    @Override
    public void close() {
        for (int r = 0; r < size; r++) {
            markClosed(r);
        }
    }
}
