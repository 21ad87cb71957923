package io.moeflow.transport;

import java.util.ArrayList;
import java.util.List;

import org.agrona.DirectBuffer;
import org.agrona.MutableDirectBuffer;

/** A {@link Communicator} over one {@link Group}, running on the process's shared {@link Engine}. */
final class GroupCommunicator implements Communicator {
    private final Engine engine;
    private final Group group;
    private final boolean ownsEngine;
    /** The urgent view of this group, made on first use (this one if the group is urgent). */
    private GroupCommunicator urgentView;

    GroupCommunicator(final Engine engine, final Group group, final boolean ownsEngine) {
        this.engine = engine;
        this.group = group;
        this.ownsEngine = ownsEngine;
    }

    @Override
    public int rank() {
        return group.me;
    }

    @Override
    public int size() {
        return group.size();
    }

    @Override
    public int globalRank(final int groupRank) {
        checkRank("groupRank", groupRank);
        return group.global(groupRank);
    }

    @Override
    public Communicator split(final int color, final int key) {
        final int p = group.size();
        final int[] pairs = new int[2 * p];
        pairs[2 * group.me] = color;
        pairs[2 * group.me + 1] = key;
        // the child's id depends only on this rank's color: register it before a faster member can use it
        engine.registerGroup(Group.childId(group.id, group.splits, color));
        allGather(pairs, 0, 2);
        final List<int[]> members = new ArrayList<>();
        for (int r = 0; r < p; r++) {
            if (pairs[2 * r] == color) {
                members.add(new int[] {pairs[2 * r + 1], r});
            }
        }
        members.sort((a, b) -> a[0] != b[0] ? Integer.compare(a[0], b[0]) : Integer.compare(a[1], b[1]));
        final int[] globals = new int[members.size()];
        int me = -1;
        for (int i = 0; i < globals.length; i++) {
            final int groupRank = members.get(i)[1];
            globals[i] = group.global(groupRank);
            if (groupRank == group.me) {
                me = i;
            }
        }
        final int splitIndex = group.splits++;
        final int id = Group.childId(group.id, splitIndex, color);
        return new GroupCommunicator(engine, new Group(id, globals, me, false, group.slot + splitIndex + 1), false);
    }

    @Override
    public Communicator urgent() {
        if (group.urgent) {
            return this;
        }
        if (urgentView == null) {
            urgentView = new GroupCommunicator(engine, group.urgentTwin(), false);
        }
        return urgentView;
    }

    @Override
    public boolean isUrgent() {
        return group.urgent;
    }

    @Override
    public void barrier() {
        final Request r = collective(Request.BARRIER);
        engine.runBlocking(r);
    }

    @Override
    public void broadcast(final float[] buf, final int off, final int count, final int root) {
        broadcast(buf, null, buf == null ? -1 : buf.length, off, count, root);
    }

    @Override
    public void broadcast(final int[] buf, final int off, final int count, final int root) {
        broadcast(null, buf, buf == null ? -1 : buf.length, off, count, root);
    }

    @Override
    public void broadcast(final MutableDirectBuffer buf, final int off, final int count, final int root) {
        checkRange("broadcast", "buf", valuesIn(buf), off, count);
        checkRank("root", root);
        final Request r = collective(Request.BROADCAST);
        inPlace(r, buf, off, count);
        r.root = root;
        engine.runBlocking(r);
    }

    private void broadcast(final float[] floats, final int[] ints, final int length, final int off, final int count,
                           final int root) {
        checkRange("broadcast", "buf", length, off, count);
        checkRank("root", root);
        final Request r = collective(Request.BROADCAST);
        inPlace(r, floats, ints, off, count);
        r.root = root;
        engine.runBlocking(r);
    }

    @Override
    public void allReduce(final float[] buf, final int off, final int count, final ReduceOp op) {
        allReduce(buf, off, count, op, null);
    }

    @Override
    public void allReduce(final float[] buf, final int off, final int count, final ReduceOp op,
                          final Fp8Compression compression) {
        engine.runBlocking(fillAllReduce(engine.blockingRequest(), buf, off, count, op, compression));
    }

    @Override
    public CollectiveHandle allReduceAsync(final float[] buf, final int off, final int count, final ReduceOp op,
                                           final Fp8Compression compression) {
        return engine.submit((AsyncRequest) fillAllReduce(new AsyncRequest(engine), buf, off, count, op, compression));
    }

    @Override
    public void allReduce(final MutableDirectBuffer buf, final int off, final int count, final ReduceOp op) {
        allReduce(buf, off, count, op, null);
    }

    @Override
    public void allReduce(final MutableDirectBuffer buf, final int off, final int count, final ReduceOp op,
                          final Fp8Compression compression) {
        engine.runBlocking(fillAllReduce(engine.blockingRequest(), buf, off, count, op, compression));
    }

    @Override
    public CollectiveHandle allReduceAsync(final MutableDirectBuffer buf, final int off, final int count, final ReduceOp op,
                                           final Fp8Compression compression) {
        return engine.submit((AsyncRequest) fillAllReduce(new AsyncRequest(engine), buf, off, count, op, compression));
    }

    private Request fillAllReduce(final Request r, final float[] buf, final int off, final int count, final ReduceOp op,
                                  final Fp8Compression compression) {
        checkAllReduce(buf == null ? -1 : buf.length, off, count, op, compression);
        begin(r, Request.ALL_REDUCE);
        inPlace(r, buf, null, off, count);
        r.reduceOp = op;
        r.compression = compression;
        return r;
    }

    private Request fillAllReduce(final Request r, final MutableDirectBuffer buf, final int off, final int count,
                                  final ReduceOp op, final Fp8Compression compression) {
        checkAllReduce(valuesIn(buf), off, count, op, compression);
        begin(r, Request.ALL_REDUCE);
        inPlace(r, buf, off, count);
        r.reduceOp = op;
        r.compression = compression;
        return r;
    }

    private static void checkAllReduce(final int length, final int off, final int count, final ReduceOp op,
                                       final Fp8Compression compression) {
        checkRange("allReduce", "buf", length, off, count);
        checkOp(op);
        checkResidual("allReduce", compression, count);
    }

    @Override
    public void reduceScatter(final float[] buf, final int off, final int countPerRank, final ReduceOp op,
                              final Fp8Compression compression) {
        engine.runBlocking(fillBlocks(engine.blockingRequest(), Request.REDUCE_SCATTER, buf, off, countPerRank, op, compression));
    }

    @Override
    public CollectiveHandle reduceScatterAsync(final float[] buf, final int off, final int countPerRank, final ReduceOp op,
                                               final Fp8Compression compression) {
        return engine.submit((AsyncRequest) fillBlocks(new AsyncRequest(engine), Request.REDUCE_SCATTER, buf, off,
            countPerRank, op, compression));
    }

    @Override
    public void allGather(final float[] buf, final int off, final int countPerRank, final Fp8Compression compression) {
        engine.runBlocking(fillBlocks(engine.blockingRequest(), Request.ALL_GATHER, buf, off, countPerRank,
            ReduceOp.SUM, compression));
    }

    @Override
    public CollectiveHandle allGatherAsync(final float[] buf, final int off, final int countPerRank,
                                           final Fp8Compression compression) {
        return engine.submit((AsyncRequest) fillBlocks(new AsyncRequest(engine), Request.ALL_GATHER, buf, off,
            countPerRank, ReduceOp.SUM, compression));
    }

    @Override
    public void reduceScatter(final MutableDirectBuffer buf, final int off, final int countPerRank, final ReduceOp op,
                              final Fp8Compression compression) {
        engine.runBlocking(fillBlocks(engine.blockingRequest(), Request.REDUCE_SCATTER, buf, off, countPerRank, op, compression));
    }

    @Override
    public CollectiveHandle reduceScatterAsync(final MutableDirectBuffer buf, final int off, final int countPerRank,
                                               final ReduceOp op, final Fp8Compression compression) {
        return engine.submit((AsyncRequest) fillBlocks(new AsyncRequest(engine), Request.REDUCE_SCATTER, buf, off,
            countPerRank, op, compression));
    }

    @Override
    public void allGather(final MutableDirectBuffer buf, final int off, final int countPerRank,
                          final Fp8Compression compression) {
        engine.runBlocking(fillBlocks(engine.blockingRequest(), Request.ALL_GATHER, buf, off, countPerRank,
            ReduceOp.SUM, compression));
    }

    @Override
    public CollectiveHandle allGatherAsync(final MutableDirectBuffer buf, final int off, final int countPerRank,
                                           final Fp8Compression compression) {
        return engine.submit((AsyncRequest) fillBlocks(new AsyncRequest(engine), Request.ALL_GATHER, buf, off,
            countPerRank, ReduceOp.SUM, compression));
    }

    private Request fillBlocks(final Request r, final byte op, final float[] buf, final int off, final int countPerRank,
                               final ReduceOp reduceOp, final Fp8Compression compression) {
        checkBlocks(op, buf == null ? -1 : buf.length, off, countPerRank, reduceOp, compression);
        begin(r, op);
        inPlace(r, buf, null, off, countPerRank);
        r.reduceOp = reduceOp;
        r.compression = compression;
        return r;
    }

    private Request fillBlocks(final Request r, final byte op, final MutableDirectBuffer buf, final int off,
                               final int countPerRank, final ReduceOp reduceOp, final Fp8Compression compression) {
        checkBlocks(op, valuesIn(buf), off, countPerRank, reduceOp, compression);
        begin(r, op);
        inPlace(r, buf, off, countPerRank);
        r.reduceOp = reduceOp;
        r.compression = compression;
        return r;
    }

    private void checkBlocks(final byte op, final int length, final int off, final int countPerRank,
                             final ReduceOp reduceOp, final Fp8Compression compression) {
        final String name = Request.opName(op);
        final int total = blocksTotal(name, countPerRank);
        checkRange(name, "buf", length, off, total);
        checkOp(reduceOp);
        checkResidual(name, compression, total);
    }

    /** The values of {@code size} blocks of {@code countPerRank}: checked to be >= 0 and to fit a Java array. */
    private int blocksTotal(final String name, final int countPerRank) {
        if (countPerRank < 0) {
            throw new IllegalArgumentException(name + ": countPerRank=" + countPerRank + ": must be >= 0");
        }
        final long total = (long) countPerRank * group.size();
        if (total > Integer.MAX_VALUE) {
            throw new IllegalArgumentException(name + ": countPerRank=" + countPerRank + " x size=" + group.size()
                + " exceeds the largest Java array");
        }
        return (int) total;
    }

    @Override
    public void allGather(final int[] buf, final int off, final int countPerRank) {
        final String name = Request.opName(Request.ALL_GATHER);
        checkRange(name, "buf", buf == null ? -1 : buf.length, off, blocksTotal(name, countPerRank));
        final Request r = collective(Request.ALL_GATHER);
        inPlace(r, null, buf, off, countPerRank);
        engine.runBlocking(r);
    }

    @Override
    public void allToAll(final float[] send, final int sendOff, final int[] sendCounts, final float[] recv,
                         final int recvOff, final int[] recvCounts, final Fp8Compression compression) {
        final Request r = engine.blockingRequest();
        fillAllToAll(r, send == null ? -1 : send.length, sendOff, sendCounts, recv == null ? -1 : recv.length, recvOff,
            recvCounts, compression);
        r.sendFloats = send;
        r.recvFloats = recv;
        engine.runBlocking(r);
    }

    @Override
    public CollectiveHandle allToAllAsync(final float[] send, final int sendOff, final int[] sendCounts, final float[] recv,
                                          final int recvOff, final int[] recvCounts, final Fp8Compression compression) {
        final AsyncRequest r = new AsyncRequest(engine);
        fillAllToAll(r, send == null ? -1 : send.length, sendOff, sendCounts, recv == null ? -1 : recv.length, recvOff,
            recvCounts, compression);
        r.sendFloats = send;
        r.recvFloats = recv;
        return engine.submit(r);
    }

    @Override
    public void allToAll(final DirectBuffer send, final int sendOff, final int[] sendCounts, final MutableDirectBuffer recv,
                         final int recvOff, final int[] recvCounts, final Fp8Compression compression) {
        final Request r = engine.blockingRequest();
        fillAllToAll(r, valuesIn(send), sendOff, sendCounts, valuesIn(recv), recvOff, recvCounts, compression);
        r.sendBuffer = send;
        r.recvBuffer = recv;
        engine.runBlocking(r);
    }

    @Override
    public CollectiveHandle allToAllAsync(final DirectBuffer send, final int sendOff, final int[] sendCounts,
                                          final MutableDirectBuffer recv, final int recvOff, final int[] recvCounts,
                                          final Fp8Compression compression) {
        final AsyncRequest r = new AsyncRequest(engine);
        fillAllToAll(r, valuesIn(send), sendOff, sendCounts, valuesIn(recv), recvOff, recvCounts, compression);
        r.sendBuffer = send;
        r.recvBuffer = recv;
        return engine.submit(r);
    }

    @Override
    public void allToAll(final int[] send, final int sendOff, final int[] sendCounts, final int[] recv, final int recvOff,
                         final int[] recvCounts) {
        final Request r = engine.blockingRequest();
        fillAllToAll(r, send == null ? -1 : send.length, sendOff, sendCounts, recv == null ? -1 : recv.length, recvOff,
            recvCounts, null);
        r.sendInts = send;
        r.recvInts = recv;
        engine.runBlocking(r);
    }

    private void fillAllToAll(final Request r, final int sendLength, final int sendOff, final int[] sendCounts,
                              final int recvLength, final int recvOff, final int[] recvCounts,
                              final Fp8Compression compression) {
        final int sendTotal = checkCounts("sendCounts", sendCounts);
        final int recvTotal = checkCounts("recvCounts", recvCounts);
        checkRange("allToAll", "send", sendLength, sendOff, sendTotal);
        checkRange("allToAll", "recv", recvLength, recvOff, recvTotal);
        if (sendCounts[group.me] != recvCounts[group.me]) {
            throw new IllegalArgumentException("allToAll: sendCounts[" + group.me + "]=" + sendCounts[group.me]
                + " but recvCounts[" + group.me + "]=" + recvCounts[group.me] + ": what this rank sends itself must match");
        }
        checkResidual("allToAll", compression, sendTotal);
        begin(r, Request.ALL_TO_ALL);
        r.sendOff = sendOff;
        r.recvOff = recvOff;
        r.sendCounts = sendCounts;
        r.recvCounts = recvCounts;
        r.count = sendTotal;
        r.compression = compression;
    }

    private int checkCounts(final String name, final int[] counts) {
        if (counts == null || counts.length != group.size()) {
            throw new IllegalArgumentException("allToAll: " + name + ".length=" + (counts == null ? "null" : counts.length)
                + ": must equal the group size " + group.size());
        }
        long total = 0;
        for (int i = 0; i < counts.length; i++) {
            if (counts[i] < 0) {
                throw new IllegalArgumentException("allToAll: " + name + "[" + i + "]=" + counts[i] + ": must be >= 0");
            }
            total += counts[i];
        }
        if (total > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("allToAll: " + name + " sum to " + total + ", more than an array holds");
        }
        return (int) total;
    }

    @Override
    public void send(final int peer, final float[] buf, final int off, final int count) {
        pointToPoint(peer, buf, null, off, count, -1, null, null, 0, 0);
    }

    @Override
    public void recv(final int peer, final float[] buf, final int off, final int count) {
        pointToPoint(-1, null, null, 0, 0, peer, buf, null, off, count);
    }

    @Override
    public void send(final int peer, final int[] buf, final int off, final int count) {
        pointToPoint(peer, null, buf, off, count, -1, null, null, 0, 0);
    }

    @Override
    public void recv(final int peer, final int[] buf, final int off, final int count) {
        pointToPoint(-1, null, null, 0, 0, peer, null, buf, off, count);
    }

    @Override
    public void sendRecv(final int dest, final float[] sendBuf, final int sendOff, final int sendCount, final int source,
                         final float[] recvBuf, final int recvOff, final int recvCount) {
        pointToPoint(dest, sendBuf, null, sendOff, sendCount, source, recvBuf, null, recvOff, recvCount);
    }

    @Override
    public void send(final int peer, final DirectBuffer buf, final int off, final int count) {
        checkPeer("send", peer);
        checkRange("send", "buf", valuesIn(buf), off, count);
        final Request r = pointToPointRequest(peer, off, count, -1, 0, 0);
        r.sendBuffer = buf;
        engine.runBlocking(r);
    }

    @Override
    public void recv(final int peer, final MutableDirectBuffer buf, final int off, final int count) {
        checkPeer("recv", peer);
        checkRange("recv", "buf", valuesIn(buf), off, count);
        final Request r = pointToPointRequest(-1, 0, 0, peer, off, count);
        r.recvBuffer = buf;
        engine.runBlocking(r);
    }

    @Override
    public void sendRecv(final int dest, final DirectBuffer sendBuf, final int sendOff, final int sendCount, final int source,
                         final MutableDirectBuffer recvBuf, final int recvOff, final int recvCount) {
        checkPeer("send", dest);
        checkRange("send", "buf", valuesIn(sendBuf), sendOff, sendCount);
        checkPeer("recv", source);
        checkRange("recv", "buf", valuesIn(recvBuf), recvOff, recvCount);
        final Request r = pointToPointRequest(dest, sendOff, sendCount, source, recvOff, recvCount);
        r.sendBuffer = sendBuf;
        r.recvBuffer = recvBuf;
        engine.runBlocking(r);
    }

    private void pointToPoint(final int dest, final float[] sendFloats, final int[] sendInts, final int sendOff,
                              final int sendCount, final int source, final float[] recvFloats, final int[] recvInts,
                              final int recvOff, final int recvCount) {
        if (dest >= 0 || sendFloats != null || sendInts != null) {
            checkPeer("send", dest);
            checkRange("send", "buf", sendFloats != null ? sendFloats.length : sendInts != null ? sendInts.length : -1,
                sendOff, sendCount);
        }
        if (source >= 0 || recvFloats != null || recvInts != null) {
            checkPeer("recv", source);
            checkRange("recv", "buf", recvFloats != null ? recvFloats.length : recvInts != null ? recvInts.length : -1,
                recvOff, recvCount);
        }
        final Request r = pointToPointRequest(dest, sendOff, sendCount, source, recvOff, recvCount);
        r.sendFloats = sendFloats;
        r.sendInts = sendInts;
        r.recvFloats = recvFloats;
        r.recvInts = recvInts;
        engine.runBlocking(r);
    }

    /** The blocking request of a checked point-to-point operation, its sequence numbers taken. */
    private Request pointToPointRequest(final int dest, final int sendOff, final int sendCount, final int source,
                                        final int recvOff, final int recvCount) {
        final Request r = engine.blockingRequest();
        begin(r, Request.P2P);
        r.dest = dest;
        r.source = source;
        r.sendOff = sendOff;
        r.count = sendCount;
        r.recvOff = recvOff;
        r.recvCount = recvCount;
        if (dest >= 0) {
            r.sendSequence = group.nextSendSequence[dest]++;
        }
        if (source >= 0) {
            r.recvSequence = group.nextRecvSequence[source]++;
        }
        return r;
    }

    @Override
    public TransportCounters counters() {
        return engine.transport().counters();
    }

    @Override
    public void close() {
        if (ownsEngine) {
            engine.close();
        }
    }

    @Override
    public String toString() {
        return "Communicator[group " + group.id + (group.urgent ? " (urgent)" : "") + ", rank " + group.me + " of " + group.size() + ", "
            + engine.transport().describe() + "]";
    }

    private Request collective(final byte op) {
        final Request r = engine.blockingRequest();
        begin(r, op);
        return r;
    }

    private void begin(final Request r, final byte op) {
        r.op = op;
        r.group = group;
        if (op != Request.P2P) {
            r.sequence = group.nextSequence++;
        }
    }

    private static void inPlace(final Request r, final float[] floats, final int[] ints, final int off, final int count) {
        r.sendFloats = floats;
        r.recvFloats = floats;
        r.sendInts = ints;
        r.recvInts = ints;
        r.sendOff = off;
        r.recvOff = off;
        r.count = count;
    }

    private static void inPlace(final Request r, final MutableDirectBuffer buffer, final int off, final int count) {
        r.sendBuffer = buffer;
        r.recvBuffer = buffer;
        r.sendOff = off;
        r.recvOff = off;
        r.count = count;
    }

    /** Whole 32-bit values a buffer holds, or -1 for null (an Agrona buffer's capacity is an int of bytes). */
    private static int valuesIn(final DirectBuffer buffer) {
        return buffer == null ? -1 : buffer.capacity() / 4;
    }

    private void checkRank(final String name, final int groupRank) {
        if (groupRank < 0 || groupRank >= group.size()) {
            throw new IllegalArgumentException(name + "=" + groupRank + ": must be in [0, " + group.size() + ")");
        }
    }

    private void checkPeer(final String op, final int peer) {
        if (peer < 0 || peer >= group.size() || peer == group.me) {
            throw new IllegalArgumentException(op + ": peer=" + peer + ": must be another rank in [0, " + group.size()
                + "), not this rank " + group.me);
        }
    }

    private static void checkOp(final ReduceOp op) {
        if (op == null) {
            throw new IllegalArgumentException("op=null: give ReduceOp.SUM or ReduceOp.AVERAGE");
        }
    }

    private static void checkResidual(final String op, final Fp8Compression compression, final int count) {
        if (compression != null && compression.residual() != null && compression.residual().length != count) {
            throw new IllegalArgumentException(op + ": error-feedback residual length=" + compression.residual().length
                + " but the operation has " + count + " values: make one Fp8Compression per buffer region");
        }
    }

    static void checkRange(final String op, final String name, final int length, final int off, final int count) {
        if (length < 0) {
            throw new IllegalArgumentException(op + ": " + name + "=null");
        }
        if (off < 0 || count < 0 || (long) off + count > length) {
            throw new IllegalArgumentException(op + ": off=" + off + " count=" + count + " does not fit " + name
                + ".length=" + length);
        }
    }
}
