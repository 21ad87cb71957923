package io.moeflow.transport.rdma;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

import org.agrona.MutableDirectBuffer;
import org.agrona.concurrent.UnsafeBuffer;

import io.moeflow.transport.FrameAction;
import io.moeflow.transport.FrameHandler;
import io.moeflow.transport.PeerFailureException;
import io.moeflow.transport.PeerHandshake;
import io.moeflow.transport.Transport;
import io.moeflow.transport.TransportCounters;
import io.moeflow.transport.TransportException;

/**
 * {@link Transport} over RDMA verbs ({@link Verbs}): one reliable-connected queue pair per peer,
 * carrying all {@link #LANES} lanes (a queue pair delivers in order, so each lane does too).
 *
 * <p><b>Memory</b>, registered once at construction, never per message ({@link RegisteredMemory}:
 * one block per peer, packed into registrations of at most 2 GiB). Per peer a remote-writable block
 * holds {@code creditsPerLane} frame slots per lane plus an inbox of one consumed-counter per lane;
 * a local block holds the receive buffers posted for SENDs, the send slots frames are claimed in,
 * and an outbox.
 *
 * <p><b>Frames.</b> A frame of at most {@code eagerLimitBytes} goes by SEND (immediate: its lane)
 * into a posted receive buffer and is copied into its lane's next slot; a larger one goes by RDMA
 * WRITE with immediate straight into that slot of the peer's block (one-sided: no copy at the
 * receiver, and posted receive buffers stay small), the immediate consuming one posted receive so
 * the receiver learns the lane. The length is the receive completion's byte count (for a WRITE with
 * immediate, the bytes written), never in the immediate: so the immediate of a frame depends only on
 * its kind and lane, and a verbs layer can post every frame from a work request prepared once
 * ({@link DisniVerbs} does: DiSNI cannot change a prepared request's immediate). The engine reads
 * frames in place in the slots.
 *
 * <p><b>Credits.</b> A sender may have at most {@code creditsPerLane} frames per lane that the peer
 * has not consumed: slot {@code n % credits} of lane {@code l} is free exactly when frame {@code n-credits}
 * was consumed. The receiver reports its consumed counters by RDMA WRITE into the sender's inbox
 * (no receive consumed, at most one such write in flight per peer). Every frame consumes one posted
 * receive; {@code lanes * credits + 3} are posted (handshake and goodbye included), each reposted
 * as soon as its completion is handled, so a sender can never overrun them.
 *
 * <p><b>Handshake.</b> {@link PeerHandshake} over each queue pair before any frame: HELLO carries the
 * address and key of this rank's block for that peer, and a peer is trusted (and written to) only
 * once its PROOF verifies. Data from a peer that has not proved the token fails that peer. Frames
 * are not individually tagged: a queue pair is bound to its connection.
 *
 * <p><b>Failure.</b> A completion with an error status, a queue pair that disconnects without a
 * goodbye, or a peer that breaks the protocol (overruns its credits, sends data unproved) makes
 * {@link #peerLost} name the rank and the cause; the engine fails the job within its bound.
 * Completions are polled on the caller's (the engine's progress) thread, in {@link #poll},
 * {@link #tryClaim} when out of credit, and {@link #doHousekeeping}.
 */
public final class RdmaTransport implements Transport {
    /** Lanes per peer, as the other back-ends: control, urgent and three bulk lanes. */
    public static final int LANES = 5;
    private static final int TYPE_DATA = 1;
    private static final int TYPE_HANDSHAKE = 2;
    private static final int TYPE_BYE = 3;
    private static final long WR_RECV = 1;
    private static final long WR_DATA = 2;
    private static final long WR_MAILBOX = 3;
    private static final long WR_HANDSHAKE = 4;
    private static final long WR_BYE = 5;
    private static final int BINDING_BYTES = 28;
    private static final int POLL_BATCH = 64;

    private final RdmaTransportConfig config;
    private final Verbs verbs;
    private final int rank;
    private final int size;
    private final int credits;
    private final int slotBytes;
    private final int eagerBytes;
    private final int receives;
    private final int sendSlots;
    private final TransportCounters counters = new TransportCounters();
    private final Completion[] completions = new Completion[POLL_BATCH];
    private final RegisteredMemory remoteMemory;
    private final RegisteredMemory localMemory;
    private final int inboxOffset;
    private final int sendOffset;
    private final int outboxOffset;
    private final QueuePair[] qps;
    private final long[] peerBase;
    private final int[] peerKey;
    private final long[][] sent;
    private final long[][] arrived;
    private final long[][] consumed;
    private final long[][] advertised;
    private final int[][] lengths;
    private final boolean[][] sendBusy;
    private final long[] sendHead;
    private final int[] claimSlot;
    private final int[] claimLength;
    private final boolean[] mailboxInFlight;
    private final boolean[] verified;
    private final boolean[] proofPosted;
    private final boolean[] byeReceived;
    private final String[] lost;
    private final PeerHandshake handshake;
    private String handshakeFailure;
    private boolean closed;
    private boolean closing;
    private int byesPosted;
    private int byesCompleted;

    private RdmaTransport(final RdmaTransportConfig config, final Verbs verbs) throws IOException {
        this.config = config;
        this.verbs = verbs;
        this.rank = config.rank();
        this.size = config.size();
        this.credits = config.creditsPerLane();
        this.slotBytes = RegisteredMemory.align(config.maxFrameLengthBytes());
        this.eagerBytes = RegisteredMemory.align(config.eagerLimitBytes());
        this.receives = LANES * credits + 3;
        this.sendSlots = config.sendSlotsPerPeer();
        for (int i = 0; i < POLL_BATCH; i++) {
            completions[i] = new Completion();
        }
        inboxOffset = LANES * credits * slotBytes;
        final int remoteBlock = RegisteredMemory.align(inboxOffset + LANES * Long.BYTES);
        sendOffset = receives * eagerBytes;
        outboxOffset = sendOffset + sendSlots * slotBytes;
        final int localBlock = RegisteredMemory.align(outboxOffset + Math.max(LANES * Long.BYTES, PeerHandshake.HEADER_BYTES));
        remoteMemory = new RegisteredMemory(verbs, remoteBlock, size, config.maxRegistrationBytes());
        localMemory = new RegisteredMemory(verbs, localBlock, size, config.maxRegistrationBytes());
        qps = new QueuePair[size];
        peerBase = new long[size];
        peerKey = new int[size];
        sent = new long[size][LANES];
        arrived = new long[size][LANES];
        consumed = new long[size][LANES];
        advertised = new long[size][LANES];
        lengths = new int[size][LANES * credits];
        sendBusy = new boolean[size][sendSlots];
        sendHead = new long[size];
        claimSlot = new int[size * LANES];
        claimLength = new int[size * LANES];
        mailboxInFlight = new boolean[size];
        verified = new boolean[size];
        proofPosted = new boolean[size];
        byeReceived = new boolean[size];
        lost = new String[size];
        handshake = new PeerHandshake(config.token(), config.jobId(), rank, size);
    }

    /**
     * Work requests one queue pair may have outstanding at once: the posted receives ({@code lanes *
     * credits + 3}) plus the sends ({@code sendSlotsPerPeer}, a credit update and a goodbye). Size a
     * verbs layer's queues with it ({@link DisniVerbs}: send and receive queue depth; twice it, the
     * completion queue).
     */
    public static int workRequestsPerQueuePair(final RdmaTransportConfig config) {
        return LANES * config.creditsPerLane() + 3 + config.sendSlotsPerPeer() + 2;
    }

    /**
     * Connects to every peer and runs the job-token handshake with each, within the config's
     * connect timeout; on failure closes {@code verbs} and throws one message naming the ranks.
     */
    public static RdmaTransport open(final RdmaTransportConfig config, final Verbs verbs) {
        RdmaTransport t = null;
        try {
            t = new RdmaTransport(config, verbs);
            t.connectAll();
            return t;
        } catch (final IOException | RuntimeException e) {
            verbs.close();
            if (e instanceof TransportException) {
                throw (TransportException) e;
            }
            throw new TransportException("rank " + config.rank() + ": could not set up the RDMA transport over "
                + verbs.describe() + ": " + e.getMessage(), e);
        }
    }

    private void connectAll() throws IOException {
        final long deadline = System.nanoTime() + config.connectTimeoutNs();
        for (int peer = 0; peer < size; peer++) {
            if (peer == rank) {
                continue;
            }
            try {
                qps[peer] = verbs.connect(peer, Math.max(1, deadline - System.nanoTime()));
            } catch (final IOException e) {
                throw new TransportException("rank " + rank + ": could not connect a queue pair to rank " + peer + " within "
                    + config.connectTimeoutNs() / 1_000_000 + " ms: " + e.getMessage(), e);
            }
            for (int i = 0; i < receives; i++) {
                postReceive(peer, i);
            }
        }
        for (int peer = 0; peer < size; peer++) {
            if (peer != rank) {
                sendHandshake(peer, handshake.hello(peer, binding(peer)));
            }
        }
        while (true) {
            progress();
            if (handshakeFailure != null) {
                throw new TransportException(handshakeFailure);
            }
            final StringBuilder missing = new StringBuilder();
            for (int peer = 0; peer < size; peer++) {
                if (peer == rank) {
                    continue;
                }
                if (lost[peer] != null) {
                    throw new TransportException("rank " + rank + ": handshake with rank " + peer + " failed: " + lost[peer]);
                }
                if (!verified[peer] || !proofPosted[peer]) {
                    missing.append(missing.length() == 0 ? "" : ", ").append(peer);
                }
            }
            if (missing.length() == 0) {
                return;
            }
            if (System.nanoTime() - deadline > 0) {
                throw new TransportException("rank " + rank + ": no authenticated RDMA connection with rank(s) " + missing
                    + " within " + config.connectTimeoutNs() / 1_000_000 + " ms (are they running, with the same job token?)");
            }
            Thread.onSpinWait();
        }
    }

    private byte[] binding(final int peer) {
        final MemoryRegion region = remoteMemory.region(peer);
        return ByteBuffer.allocate(BINDING_BYTES).order(ByteOrder.LITTLE_ENDIAN)
            .putLong(region.address() + remoteMemory.offset(peer)).putInt(region.remoteKey()).putInt(LANES).putInt(credits)
            .putInt(config.maxFrameLengthBytes()).putInt(config.eagerLimitBytes()).array();
    }

    private void sendHandshake(final int peer, final byte[] message) {
        final int slot = allocateSlot(peer);
        if (slot < 0 || message.length > config.eagerLimitBytes()) {
            throw new IllegalStateException("no send slot for the handshake with rank " + peer);
        }
        final MemoryRegion region = localMemory.region(peer);
        final int offset = sendSlotOffset(peer, slot);
        region.view().putBytes(offset, message);
        if (!qps[peer].postSend(workId(WR_HANDSHAKE, peer, slot), region, offset, message.length, TYPE_HANDSHAKE << 28)) {
            markLost(peer, "rank " + peer + ": the queue pair refused the handshake (disconnected)");
        }
    }

    private void onHandshake(final int peer, final byte[] message) {
        if (verified[peer] && proofPosted[peer]) {
            counters.onHandshakeRejected(); // a handshake is over once done
            return;
        }
        final byte kind = PeerHandshake.kind(message);
        if (kind == PeerHandshake.HELLO && !proofPosted[peer]) {
            final byte[] proof = handshake.proof(peer, message, binding(peer));
            if (proof == null) {
                counters.onHandshakeRejected();
                handshakeFailure = "rank " + rank + ": rank " + peer + " sent a HELLO for another job, rank or job size";
                return;
            }
            sendHandshake(peer, proof);
            proofPosted[peer] = true;
        } else if (kind == PeerHandshake.PROOF && !verified[peer]) {
            final byte[] theirs = handshake.verify(peer, message);
            if (theirs == null) {
                counters.onHandshakeRejected();
                handshakeFailure = "rank " + rank + ": rank " + peer + " failed the job-token handshake (wrong token or another job)";
                return;
            }
            final ByteBuffer b = ByteBuffer.wrap(theirs).order(ByteOrder.LITTLE_ENDIAN);
            if (theirs.length != BINDING_BYTES || b.getInt(12) != LANES || b.getInt(16) != credits
                || b.getInt(20) != config.maxFrameLengthBytes() || b.getInt(24) != config.eagerLimitBytes()) {
                handshakeFailure = "rank " + rank + ": rank " + peer + " runs different RDMA settings (lanes, credits, frame or"
                    + " eager length): start every rank with the same configuration";
                return;
            }
            peerBase[peer] = b.getLong(0);
            peerKey[peer] = b.getInt(8);
            verified[peer] = true;
        } else {
            counters.onHandshakeRejected();
        }
    }

    private static long workId(final long kind, final int peer, final int index) {
        return kind << 56 | (long) peer << 32 | index;
    }

    private void postReceive(final int peer, final int index) {
        if (!qps[peer].postRecv(workId(WR_RECV, peer, index), localMemory.region(peer), localMemory.offset(peer) + index * eagerBytes,
            eagerBytes)) {
            markLost(peer, "rank " + peer + ": the queue pair refused a receive (disconnected)");
        }
    }

    private int sendSlotOffset(final int peer, final int slot) {
        return localMemory.offset(peer) + sendOffset + slot * slotBytes;
    }

    private int slotOffset(final int peer, final int lane, final long frame) {
        return remoteMemory.offset(peer) + (lane * credits + (int) (frame % credits)) * slotBytes;
    }

    private int allocateSlot(final int peer) {
        final int slot = (int) (sendHead[peer] % sendSlots);
        if (sendBusy[peer][slot]) {
            return -1;
        }
        sendBusy[peer][slot] = true;
        sendHead[peer]++;
        return slot;
    }

    private void markLost(final int peer, final String why) {
        if (lost[peer] == null) {
            lost[peer] = why;
        }
    }

    private long peerConsumed(final int peer, final int lane) {
        return remoteMemory.region(peer).view().getLongVolatile(remoteMemory.offset(peer) + inboxOffset + lane * Long.BYTES);
    }

    /** Handles the completions that are ready and reports consumed frames to their senders. */
    private int progress() {
        int n = pollOnce();
        for (int peer = 0; peer < size; peer++) {
            if (peer == rank || qps[peer] == null) {
                continue;
            }
            if (!byeReceived[peer] && lost[peer] == null && !closing && !qps[peer].connected()) {
                n += pollOnce(); // what completed before the disconnect (a goodbye, say) is in the queue by now
                if (!byeReceived[peer] && lost[peer] == null) {
                    markLost(peer, "rank " + peer + ": connection lost (its queue pair disconnected without a goodbye)");
                }
            }
            flushMailbox(peer);
        }
        return n;
    }

    private int pollOnce() {
        int total = 0;
        int n;
        do {
            n = verbs.poll(completions);
            for (int i = 0; i < n; i++) {
                onCompletion(completions[i]);
            }
            total += n;
        } while (n == POLL_BATCH);
        return total;
    }

    private void onCompletion(final Completion c) {
        final int kind = (int) (c.workId >>> 56);
        final int peer = (int) (c.workId >>> 32) & 0xffffff;
        final int index = (int) c.workId;
        if (c.status != Completion.SUCCESS) {
            if (!closing && !byeReceived[peer] && lost[peer] == null) {
                markLost(peer, c.status == Completion.FLUSHED
                    ? "rank " + peer + ": connection lost (its queue pair disconnected without a goodbye; posted work flushed)"
                    : "rank " + peer + ": " + Completion.opcodeName(c.opcode) + " completed with error status " + c.status
                        + "; the queue pair is in the error state");
            }
            if (kind == WR_DATA || kind == WR_HANDSHAKE) {
                sendBusy[peer][index] = false;
            }
            return;
        }
        switch ((int) kind) {
            case (int) WR_RECV:
                onReceive(peer, index, c);
                break;
            case (int) WR_DATA:
            case (int) WR_HANDSHAKE:
                sendBusy[peer][index] = false;
                break;
            case (int) WR_MAILBOX:
                mailboxInFlight[peer] = false;
                break;
            default:
                byesCompleted++; // WR_BYE
                break;
        }
    }

    private void onReceive(final int peer, final int index, final Completion c) {
        final int type = c.immediate >>> 28;
        final MemoryRegion local = localMemory.region(peer);
        final int bounce = localMemory.offset(peer) + index * eagerBytes;
        if (type == TYPE_DATA) {
            final int lane = (c.immediate >>> 24) & 0xf;
            final int length = c.byteLength;
            if (!verified[peer]) {
                counters.onForgedFrame();
                markLost(peer, "rank " + peer + ": sent data before proving the job token");
            } else if (lane >= LANES || length > config.maxFrameLengthBytes() || (c.immediate & 0xffffff) != 0) {
                counters.onMalformedFrame();
                markLost(peer, "rank " + peer + ": sent a malformed frame (lane " + lane + ", " + length + " bytes)");
            } else if (arrived[peer][lane] - consumed[peer][lane] >= credits) {
                markLost(peer, "rank " + peer + ": overran its " + credits + " credits on lane " + lane + " (protocol error)");
            } else {
                final long frame = arrived[peer][lane];
                if (c.opcode == Completion.RECV) {
                    remoteMemory.region(peer).view().putBytes(slotOffset(peer, lane, frame), local.view(), bounce, length);
                }
                lengths[peer][lane * credits + (int) (frame % credits)] = length;
                arrived[peer][lane] = frame + 1;
                counters.onFrameReceived(length);
            }
        } else if (type == TYPE_HANDSHAKE) {
            final byte[] message = new byte[Math.min(c.byteLength, eagerBytes)];
            local.view().getBytes(bounce, message);
            onHandshake(peer, message);
        } else if (type == TYPE_BYE) {
            byeReceived[peer] = true;
        } else {
            counters.onMalformedFrame();
        }
        if (lost[peer] == null && !byeReceived[peer]) {
            postReceive(peer, index);
        }
    }

    private void flushMailbox(final int peer) {
        if (mailboxInFlight[peer] || lost[peer] != null || byeReceived[peer] || !verified[peer]) {
            return;
        }
        boolean changed = false;
        for (int lane = 0; lane < LANES; lane++) {
            changed |= consumed[peer][lane] != advertised[peer][lane];
        }
        if (!changed) {
            return;
        }
        final MemoryRegion region = localMemory.region(peer);
        final int outbox = localMemory.offset(peer) + outboxOffset;
        for (int lane = 0; lane < LANES; lane++) {
            region.view().putLong(outbox + lane * Long.BYTES, consumed[peer][lane]);
            advertised[peer][lane] = consumed[peer][lane];
        }
        mailboxInFlight[peer] = true;
        if (!qps[peer].postWrite(workId(WR_MAILBOX, peer, 0), region, outbox, LANES * Long.BYTES, peerBase[peer] + inboxOffset,
            peerKey[peer], false, 0)) {
            markLost(peer, "rank " + peer + ": the queue pair refused a credit update (disconnected)");
        }
    }

    @Override
    public int rank() {
        return rank;
    }

    @Override
    public int size() {
        return size;
    }

    @Override
    public int maxFrameLength(final int peer) {
        return config.maxFrameLengthBytes();
    }

    @Override
    public int lanes() {
        return LANES;
    }

    @Override
    public int tryClaim(final int peer, final int lane, final int lengthBytes) {
        if (closed) {
            return CLOSED;
        }
        if (lengthBytes < 0 || lengthBytes > config.maxFrameLengthBytes()) {
            throw new IllegalArgumentException("frame of " + lengthBytes + " bytes: at most " + config.maxFrameLengthBytes());
        }
        if (lost[peer] != null || byeReceived[peer] || qps[peer] == null) {
            return NOT_CONNECTED;
        }
        if (sent[peer][lane] - peerConsumed(peer, lane) >= credits || sendBusy[peer][(int) (sendHead[peer] % sendSlots)]) {
            progress();
            if (lost[peer] != null) {
                return NOT_CONNECTED;
            }
            if (sent[peer][lane] - peerConsumed(peer, lane) >= credits) {
                return BACK_PRESSURED;
            }
        }
        final int slot = allocateSlot(peer);
        if (slot < 0) {
            return BACK_PRESSURED;
        }
        claimSlot[peer * LANES + lane] = slot;
        claimLength[peer * LANES + lane] = lengthBytes;
        return sendSlotOffset(peer, slot);
    }

    @Override
    public MutableDirectBuffer claimBuffer(final int peer, final int lane) {
        return localMemory.region(peer).view();
    }

    @Override
    public void commit(final int peer, final int lane) {
        final int slot = claimSlot[peer * LANES + lane];
        final int length = claimLength[peer * LANES + lane];
        final int offset = sendSlotOffset(peer, slot);
        final MemoryRegion region = localMemory.region(peer);
        final long frame = sent[peer][lane];
        final int immediate = TYPE_DATA << 28 | lane << 24; // the length travels as the completion's byte count
        final long id = workId(WR_DATA, peer, slot);
        final boolean posted = length <= config.eagerLimitBytes()
            ? qps[peer].postSend(id, region, offset, length, immediate)
            : qps[peer].postWrite(id, region, offset, length,
                peerBase[peer] + (lane * credits + (int) (frame % credits)) * (long) slotBytes, peerKey[peer], true, immediate);
        if (!posted) {
            sendBusy[peer][slot] = false;
            markLost(peer, "rank " + peer + ": the queue pair refused a frame (disconnected)");
            return;
        }
        sent[peer][lane] = frame + 1;
        counters.onFrameSent(length);
    }

    @Override
    public int poll(final int peer, final int lane, final FrameHandler handler, final int frameLimit) {
        if (arrived[peer][lane] == consumed[peer][lane]) {
            progress();
        }
        final UnsafeBuffer view = remoteMemory.region(peer).view();
        int n = 0;
        while (n < frameLimit && consumed[peer][lane] < arrived[peer][lane]) {
            final long frame = consumed[peer][lane];
            final int length = lengths[peer][lane * credits + (int) (frame % credits)];
            final FrameAction action = handler.onFrame(view, slotOffset(peer, lane, frame), length);
            if (action == FrameAction.ABORT) {
                break;
            }
            consumed[peer][lane] = frame + 1;
            n++;
            if (action == FrameAction.BREAK) {
                break;
            }
        }
        if (n > 0) {
            flushMailbox(peer);
        }
        return n;
    }

    private boolean drained(final int peer) {
        for (int lane = 0; lane < LANES; lane++) {
            if (arrived[peer][lane] != consumed[peer][lane]) {
                return false;
            }
        }
        return true;
    }

    @Override
    public String peerLost(final int peer) {
        if (byeReceived[peer] && drained(peer)) {
            return "rank " + peer + " closed its transport";
        }
        return lost[peer];
    }

    @Override
    public PeerFailureException.Reason peerState(final int peer) {
        if (byeReceived[peer] && drained(peer)) {
            return PeerFailureException.Reason.EXITED;
        }
        return lost[peer] == null || byeReceived[peer] ? null : PeerFailureException.Reason.DISCONNECTED;
    }

    @Override
    public String localFailure() {
        return null;
    }

    @Override
    public int doHousekeeping() {
        return closed ? 0 : progress();
    }

    @Override
    public TransportCounters counters() {
        return counters;
    }

    /** Memory registrations this transport made (all at construction; constant afterwards). */
    public int registrations() {
        return remoteMemory.registrations() + localMemory.registrations();
    }

    @Override
    public String describe() {
        return "rdma " + verbs.describe() + " rank " + rank + " of " + size;
    }

    /** Waits (bounded) until peers consumed what this rank sent, says goodbye, and closes the queue pairs. */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        final long deadline = System.nanoTime() + config.drainTimeoutNs();
        boolean waiting = true;
        while (waiting && System.nanoTime() - deadline < 0) {
            progress();
            waiting = false;
            for (int peer = 0; peer < size && !waiting; peer++) {
                if (peer == rank || qps[peer] == null || lost[peer] != null || byeReceived[peer]) {
                    continue;
                }
                for (int lane = 0; lane < LANES; lane++) {
                    waiting |= sent[peer][lane] != peerConsumed(peer, lane);
                }
            }
            Thread.onSpinWait();
        }
        for (int peer = 0; peer < size; peer++) {
            if (peer != rank && qps[peer] != null && lost[peer] == null && qps[peer].connected()) {
                if (qps[peer].postSend(workId(WR_BYE, peer, 0), localMemory.region(peer), localMemory.offset(peer) + outboxOffset,
                    0, TYPE_BYE << 28)) {
                    byesPosted++;
                }
            }
        }
        final long byeDeadline = System.nanoTime() + Math.min(config.drainTimeoutNs(), 1_000_000_000L);
        while (byesCompleted < byesPosted && System.nanoTime() - byeDeadline < 0) {
            progress(); // a queue pair closed at once could flush the goodbye
            Thread.onSpinWait();
        }
        closing = true;
        verbs.close();
    }
}
