package io.moeflow.transport;

/**
 * Runs every operation as a schedule of steps. A step sends one block to a peer and/or receives one
 * block from a peer; sends and receives advance independently through the steps, frame by frame, so
 * consecutive steps pipeline (a ring forwards the first frame of a block while the rest of it is
 * still arriving). Two rules keep the data right:
 * <ul>
 *   <li>a send may only go as far as the receive it depends on ({@code sendDependsOn}): a ring
 *       forwards what it has reduced, a tree forwards what it has received;</li>
 *   <li>a reducing receive into the region that the same step sends ({@code sameRegion}, recursive
 *       doubling) may only apply values this rank has already sent.</li>
 * </ul>
 * Algorithms (chosen in {@link #plan}):
 * <ul>
 *   <li>all-reduce: recursive doubling for small payloads and no compression (log2 p rounds; extra
 *       ranks of a non-power-of-two group fold into a partner first), else ring reduce-scatter then
 *       ring all-gather (2(p-1) steps, each rank sends 2(p-1)/p of the data);</li>
 *   <li>reduce-scatter, all-gather: ring;</li>
 *   <li>broadcast: binomial tree for small payloads, pipelined chain for large ones;</li>
 *   <li>all-to-all: pairwise exchange, step k sends to rank+k and receives from rank-k;</li>
 *   <li>barrier: dissemination, round k signals rank+2^k and waits for rank-2^k.</li>
 * </ul>
 * Reduction order is fixed by the schedule: in the ring, block b is summed as
 * {@code ((x_b + x_{b+1}) + x_{b+2}) + ...} (ranks modulo p) and then copied, so all ranks hold the
 * same bits; recursive doubling adds two partial sums per round, which is commutative.
 */
final class ScheduleExecutor {
    /** Frames moved each way per batch: 4 frames of 64 KiB stay in a core's L2 until forwarded. */
    private static final int FRAMES_PER_BATCH = 4;
    static final int MAX_ROUNDS_PER_PROGRESS = 64;

    private final int rank;
    private final CommunicatorConfig config;
    private final FrameIo io;
    private final FrameIo.Outgoing out = new FrameIo.Outgoing();
    private final FrameIo.Incoming in;

    private final int capacity;
    private int steps;
    private final int[] stepId;
    private final int[] sendPeer;
    private final int[] sendStart;
    private final int[] sendLength;
    private final int[] quantize;
    private final int[] sendDependsOn;
    private final int[] recvPeer;
    private final int[] recvStart;
    private final int[] recvLength;
    private final int[] recvMode;
    private final boolean[] sameRegion;
    /** Every step sends and expects one frame even when its block is empty (all-to-all, barrier, p2p). */
    private boolean alwaysFrame;

    private Request request;
    private int sendStep;
    private int sendCursor;
    private boolean sendFrameDone;
    private int recvStep;

    ScheduleExecutor(final int rank, final int jobSize, final CommunicatorConfig config, final FrameIo io, final int lane) {
        this.rank = rank;
        this.config = config;
        this.io = io;
        this.in = io.newIncoming();
        this.out.lane = lane;
        this.in.lane = lane;
        capacity = maxSteps(jobSize);
        stepId = new int[capacity];
        sendPeer = new int[capacity];
        sendStart = new int[capacity];
        sendLength = new int[capacity];
        quantize = new int[capacity];
        sendDependsOn = new int[capacity];
        recvPeer = new int[capacity];
        recvStart = new int[capacity];
        recvLength = new int[capacity];
        recvMode = new int[capacity];
        sameRegion = new boolean[capacity];
    }

    /** Steps of the longest schedule of a job of {@code jobSize} ranks (frames of later steps are garbage). */
    static int maxSteps(final int jobSize) {
        return 2 * jobSize + 64;
    }

    /** Plans the schedule of {@code r} and resets progress. */
    void plan(final Request r) {
        request = r;
        steps = 0;
        alwaysFrame = false;
        final Group g = r.group;
        final int p = g.size();
        switch (r.op) {
            case Request.ALL_REDUCE:
                if (config.allReduceUsesRecursiveDoubling(r.count, r.compression != null)) {
                    planRecursiveDoubling(g, r);
                } else {
                    planRing(g, r.count, 2 * (p - 1), p - 1, 0);
                }
                break;
            case Request.REDUCE_SCATTER:
                planRing(g, p * r.count, p - 1, p - 1, -1);
                break;
            case Request.ALL_GATHER:
                planRing(g, p * r.count, p - 1, 0, 0);
                break;
            case Request.BROADCAST:
                planBroadcast(g, r);
                break;
            case Request.ALL_TO_ALL:
                planAllToAll(g, r);
                break;
            case Request.BARRIER:
                planBarrier(g);
                break;
            case Request.P2P:
                planPointToPoint(g, r);
                break;
            default:
                throw new IllegalStateException("unknown op " + r.op);
        }
        sendStep = -1;
        recvStep = -1;
        advanceSend();
        advanceRecv();
    }

    private int addStep(final int id) {
        if (steps == capacity) {
            throw new IllegalStateException("schedule longer than " + capacity + " steps");
        }
        final int s = steps++;
        stepId[s] = id;
        sendPeer[s] = -1;
        recvPeer[s] = -1;
        sendStart[s] = 0;
        sendLength[s] = 0;
        recvStart[s] = 0;
        recvLength[s] = 0;
        quantize[s] = FrameIo.QUANTIZE_PLAIN;
        sendDependsOn[s] = -1;
        recvMode[s] = FrameIo.COPY;
        sameRegion[s] = false;
        return s;
    }

    private void send(final int s, final int peer, final int start, final int length, final int dependsOn) {
        sendPeer[s] = peer;
        sendStart[s] = start;
        sendLength[s] = length;
        sendDependsOn[s] = dependsOn;
    }

    private void recv(final int s, final int peer, final int start, final int length, final int mode) {
        recvPeer[s] = peer;
        recvStart[s] = start;
        recvLength[s] = length;
        recvMode[s] = mode;
    }

    /**
     * Ring over {@code n} values split into p near-equal blocks. Step s sends block (me - s + shift)
     * to the right and receives block (me - s - 1 + shift) from the left; the first
     * {@code reduceSteps} receives add, the rest copy. The block sent at step s is the one received
     * at step s-1, hence the dependency.
     */
    private void planRing(final Group g, final int n, final int ringSteps, final int reduceSteps, final int shift) {
        final int p = g.size();
        final int right = g.global((g.me + 1) % p);
        final int left = g.global((g.me + p - 1) % p);
        final boolean average = request.reduceOp == ReduceOp.AVERAGE;
        for (int s = 0; s < ringSteps; s++) {
            final int id = addStep(s);
            final int sb = Math.floorMod(g.me - s + shift, p);
            final int rb = Math.floorMod(g.me - s - 1 + shift, p);
            send(id, right, request.sendOff + blockStart(n, p, sb), blockLength(n, p, sb), s - 1);
            final int mode = s < reduceSteps ? (s == reduceSteps - 1 && average ? FrameIo.SUM_DIVIDE : FrameIo.SUM) : FrameIo.COPY;
            recv(id, left, request.recvOff + blockStart(n, p, rb), blockLength(n, p, rb), mode);
            quantize[id] = s < reduceSteps ? FrameIo.QUANTIZE_FEEDBACK
                : s == reduceSteps ? FrameIo.QUANTIZE_FEEDBACK_WRITE_BACK : FrameIo.QUANTIZE_PLAIN;
        }
    }

    static int blockStart(final int n, final int p, final int block) {
        return (int) ((long) block * n / p);
    }

    static int blockLength(final int n, final int p, final int block) {
        return blockStart(n, p, block + 1) - blockStart(n, p, block);
    }

    /**
     * Recursive doubling over the whole buffer. With p not a power of two, rank r >= p' (the largest
     * power of two <= p) first sends its values to r - p' and at the end receives the result back.
     */
    private void planRecursiveDoubling(final Group g, final Request r) {
        final int p = g.size();
        final int pow2 = Integer.highestOneBit(p);
        final int rounds = Integer.numberOfTrailingZeros(pow2);
        final int extra = p - pow2;
        final int me = g.me;
        final int start = r.sendOff;
        final int n = r.count;
        final int finalId = rounds + 1;
        final boolean average = r.reduceOp == ReduceOp.AVERAGE && p > 1;
        if (me >= pow2) {
            final int partner = g.global(me - pow2);
            send(addStep(0), partner, start, n, -1);
            recv(addStep(finalId), partner, start, n, FrameIo.COPY);
            return;
        }
        int lastRecv = -1;
        if (me < extra) {
            final int s = addStep(0);
            recv(s, g.global(me + pow2), start, n, FrameIo.SUM);
            lastRecv = s;
        }
        for (int k = 0; k < rounds; k++) {
            final int s = addStep(1 + k);
            final int partner = g.global(me ^ (1 << k));
            send(s, partner, start, n, lastRecv);
            recv(s, partner, start, n, k == rounds - 1 && average ? FrameIo.SUM_DIVIDE : FrameIo.SUM);
            sameRegion[s] = true;
            lastRecv = s;
        }
        if (me < extra) {
            send(addStep(finalId), g.global(me + pow2), start, n, lastRecv);
        }
    }

    private void planBroadcast(final Group g, final Request r) {
        final int p = g.size();
        final int virtual = Math.floorMod(g.me - r.root, p);
        final int n = r.count;
        final int start = r.sendOff;
        final boolean small = config.broadcastUsesTree(n);
        if (!small) {
            // pipelined chain root -> root+1 -> ...: each rank forwards frames as they arrive
            int dependsOn = -1;
            if (virtual > 0) {
                dependsOn = addStep(0);
                recv(dependsOn, g.global((virtual - 1 + r.root) % p), start, n, FrameIo.COPY);
            }
            if (virtual < p - 1) {
                send(addStep(0), g.global((virtual + 1 + r.root) % p), start, n, dependsOn);
            }
            return;
        }
        // binomial tree: receive from the parent, then send to children, farthest first
        int mask = 1;
        int dependsOn = -1;
        while (mask < p) {
            if ((virtual & mask) != 0) {
                dependsOn = addStep(0);
                recv(dependsOn, g.global((virtual - mask + r.root) % p), start, n, FrameIo.COPY);
                break;
            }
            mask <<= 1;
        }
        for (mask >>= 1; mask > 0; mask >>= 1) {
            if (virtual + mask < p) {
                send(addStep(0), g.global((virtual + mask + r.root) % p), start, n, dependsOn);
            }
        }
    }

    private void planAllToAll(final Group g, final Request r) {
        final int p = g.size();
        final int me = g.me;
        alwaysFrame = true;
        // the block to itself is a local copy
        final int sendAt = r.sendOff + prefixOf(r.sendCounts, me);
        final int recvAt = r.recvOff + prefixOf(r.recvCounts, me);
        final int own = r.sendCounts[me];
        // exact, also with compression
        FrameIo.copyValues(r.sendBase(), r.sendAddress(sendAt), r.recvBase(), r.recvAddress(recvAt), own);
        for (int k = 1; k < p; k++) {
            final int s = addStep(0);
            final int to = (me + k) % p;
            final int from = (me - k + p) % p;
            send(s, g.global(to), r.sendOff + prefixOf(r.sendCounts, to), r.sendCounts[to], -1);
            recv(s, g.global(from), r.recvOff + prefixOf(r.recvCounts, from), r.recvCounts[from], FrameIo.COPY);
            quantize[s] = FrameIo.QUANTIZE_FEEDBACK;
        }
    }

    private int prefixOf(final int[] counts, final int upTo) {
        int sum = 0;
        for (int i = 0; i < upTo; i++) {
            sum += counts[i];
        }
        return sum;
    }

    private void planBarrier(final Group g) {
        final int p = g.size();
        alwaysFrame = true;
        int previous = -1;
        for (int k = 0; (1 << k) < p; k++) {
            final int s = addStep(k);
            send(s, g.global((g.me + (1 << k)) % p), 0, 0, previous);
            recv(s, g.global((g.me - (1 << k) + p) % p), 0, 0, FrameIo.COPY);
            previous = s;
        }
    }

    private void planPointToPoint(final Group g, final Request r) {
        alwaysFrame = true;
        final int s = addStep(0);
        if (r.dest >= 0) {
            send(s, g.global(r.dest), r.sendOff, r.count, -1);
        }
        if (r.source >= 0) {
            recv(s, g.global(r.source), r.recvOff, r.recvCount, FrameIo.COPY);
        }
    }

    boolean isDone() {
        return sendStep == steps && recvStep == steps;
    }

    /** Moves the send side to the next step that sends and prepares its frame header. */
    private void advanceSend() {
        do {
            sendStep++;
        } while (sendStep < steps && sendPeer[sendStep] < 0);
        sendCursor = 0;
        sendFrameDone = false;
        if (sendStep < steps) {
            final Request r = request;
            final FrameIo.Outgoing o = out;
            o.op = r.op;
            o.group = r.group.id;
            o.sequence = r.op == Request.P2P ? r.sendSequence : r.sequence;
            o.step = stepId[sendStep];
            o.blockElements = sendLength[sendStep];
            o.codec = r.compression == null ? Wire.CODEC_RAW32 : r.compression.wireCodec();
            o.reduceOp = reduceOpCode(r);
            o.srcFloats = r.sendFloats;
            o.srcBase = r.sendBase();
            o.srcAddress = r.sendAddress(sendStart[sendStep]);
            o.blockStart = sendStart[sendStep];
            o.quantize = quantize[sendStep];
            o.residual = r.compression == null ? null : r.compression.residual();
            o.residualStart = sendStart[sendStep] - r.sendOff;
        }
    }

    /** The reduce op byte of {@code r}'s frames: set for the reducing collectives only. */
    private static int reduceOpCode(final Request r) {
        return r.op == Request.ALL_REDUCE || r.op == Request.REDUCE_SCATTER ? Wire.reduceOpCode(r.reduceOp) : Wire.REDUCE_NONE;
    }

    /** Moves the receive side to the next step that receives and sets what its frames must look like. */
    private void advanceRecv() {
        do {
            recvStep++;
        } while (recvStep < steps && recvPeer[recvStep] < 0);
        if (recvStep < steps) {
            final Request r = request;
            final FrameIo.Incoming i = in;
            i.op = r.op;
            i.group = r.group.id;
            i.sequence = r.op == Request.P2P ? r.recvSequence : r.sequence;
            i.codec = r.compression == null ? Wire.CODEC_RAW32 : r.compression.wireCodec();
            i.reduceOp = reduceOpCode(r);
            i.dstFloats = r.recvFloats;
            i.dstBase = r.recvBase();
            i.dstAddress = r.recvAddress(recvStart[recvStep]);
            i.blockStart = recvStart[recvStep];
            i.mode = recvMode[recvStep];
            i.divisor = r.group.size();
            i.mismatch = null;
            i.reset(stepId[recvStep], recvLength[recvStep]);
        }
    }

    private boolean recvStepComplete() {
        return in.cursor == in.blockElements && (in.blockElements > 0 || !alwaysFrame || in.frames > 0);
    }

    private boolean sendStepComplete() {
        return sendCursor == sendLength[sendStep] && (sendLength[sendStep] > 0 || !alwaysFrame || sendFrameDone);
    }

    /**
     * Moves data without waiting: a few frames out, then a few frames in, repeated while anything
     * moves. Small batches keep a ring's reduced frames in cache until they are forwarded, and sending
     * first lets a peer that disagrees on the operation see this rank's frame and report the mismatch
     * itself.
     *
     * @param maxRounds at most this many batches each way (fewer lets other lanes take their turn sooner)
     * @return frames moved; 0 means nothing could move now
     * @throws PeerFailureException if a peer sent something this rank cannot accept
     */
    int progress(final int maxRounds) {
        int work = 0;
        for (int round = 0; round < Math.min(maxRounds, MAX_ROUNDS_PER_PROGRESS); round++) {
            final int moved = sendSome(FRAMES_PER_BATCH) + receiveSome(FRAMES_PER_BATCH);
            if (moved == 0) {
                break;
            }
            work += moved;
        }
        return work;
    }

    /**
     * Receives up to {@code maxFrames} frames. Returns frames accepted (dropped frames are polled
     * but are not progress, so a peer sending garbage cannot keep an operation alive).
     */
    private int receiveSome(final int maxFrames) {
        int accepted = 0;
        int polledTotal = 0;
        while (recvStep < steps && polledTotal < maxFrames) {
            if (recvStepComplete()) {
                advanceRecv();
                continue;
            }
            if (sameRegion[recvStep]) {
                in.applyLimit = sendStep > recvStep ? Integer.MAX_VALUE : sendStep == recvStep ? sendCursor : 0;
            }
            final int before = in.frames;
            final int polled = io.poll(recvPeer[recvStep], in, maxFrames - polledTotal);
            accepted += in.frames - before;
            if (in.mismatch != null) {
                throw new PeerFailureException(rank, recvPeer[recvStep], request.describe(),
                    PeerFailureException.Reason.PROTOCOL_ERROR, "cannot accept data from rank " + recvPeer[recvStep] + ": "
                    + in.mismatch);
            }
            if (in.blocked) {
                // the lane is in order and the peer runs its operations one at a time: it has moved on
                throw new PeerFailureException(rank, recvPeer[recvStep], request.describe(),
                    PeerFailureException.Reason.PROTOCOL_ERROR, "cannot complete: rank " + recvPeer[recvStep]
                    + " sent a frame of " + Request.opName(in.blockedByOp) + " #" + in.blockedBySequence
                    + " step " + in.blockedByStep + " of group " + in.blockedByGroup + " while this rank still expects "
                    + (in.blockElements - in.cursor) + " values of step " + stepId[recvStep]
                    + " from it: do all ranks issue the same operations, in the same order, with the same counts?");
            }
            if (polled == 0) {
                break;
            }
            polledTotal += polled;
        }
        return accepted;
    }

    private int sendSome(final int maxFrames) {
        int frames = 0;
        while (sendStep < steps && frames < maxFrames) {
            if (sendStepComplete()) {
                advanceSend();
                continue;
            }
            final int length = sendLength[sendStep];
            final int dependsOn = sendDependsOn[sendStep];
            final boolean waitsForReceive = dependsOn >= 0 && recvStep <= dependsOn;
            // a send forwards only what the receive it depends on has already delivered
            final int allowed = waitsForReceive ? (recvStep == dependsOn ? Math.min(length, in.cursor) : 0) : length;
            if (length == 0 ? waitsForReceive : sendCursor >= allowed) {
                break; // an empty signal goes out only once the signal it depends on arrived
            }
            final int peer = sendPeer[sendStep];
            if (waitsForReceive && dependsOn < sendStep && allowed < length
                && allowed - sendCursor < io.frameElements(peer, out.codec)) {
                // forwarding from an earlier step's receive: wait for a whole frame to this peer rather than
                // cut its frames to the size the data arrives in (HYBRID: 64 KiB IPC frames fed by UDP-sized
                // ones). That receive only needs what this rank sent before this step, so it does complete.
                break;
            }
            final int sent = io.send(peer, out, sendCursor, allowed - sendCursor);
            if (sent < 0) {
                break;
            }
            sendCursor += sent;
            sendFrameDone = true;
            frames++;
        }
        return frames;
    }

    /** The peer this operation waits for now (job-wide rank), or -1. */
    int blockingPeer() {
        if (recvStep < steps && !recvStepComplete()) {
            return recvPeer[recvStep];
        }
        return sendStep < steps ? sendPeer[sendStep] : -1;
    }

    /** What the operation waits for, for the timeout message (allocates). */
    String describeWait() {
        final StringBuilder sb = new StringBuilder();
        if (recvStep < steps && !recvStepComplete()) {
            sb.append("waiting for data from rank ").append(recvPeer[recvStep]).append(" (step ").append(stepId[recvStep])
                .append(": ").append(in.cursor).append(" of ").append(in.blockElements).append(" values received)");
            if (in.blocked) {
                sb.append("; that stream holds a frame of ").append(Request.opName(in.blockedByOp)).append(" #")
                    .append(in.blockedBySequence).append(" of group ").append(in.blockedByGroup)
                    .append(" first: do all ranks issue the same operations in the same order?");
            }
        } else if (sendStep < steps) {
            sb.append("rank ").append(sendPeer[sendStep]).append(" is not taking data (step ").append(stepId[sendStep])
                .append(": ").append(sendCursor).append(" of ").append(sendLength[sendStep]).append(" values sent)");
        }
        return sb.toString();
    }
}
