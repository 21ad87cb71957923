package io.moeflow.transport;

import org.agrona.DirectBuffer;
import org.agrona.MutableDirectBuffer;
import org.agrona.UnsafeApi;

/**
 * Parameters of one operation and its completion (engine-internal). Blocking calls reuse one
 * instance; async calls allocate one.
 */
class Request {
    static final byte ALL_REDUCE = 1;
    static final byte REDUCE_SCATTER = 2;
    static final byte ALL_GATHER = 3;
    static final byte BROADCAST = 4;
    static final byte ALL_TO_ALL = 5;
    static final byte BARRIER = 6;
    static final byte P2P = 7;

    private static final long FLOAT_BASE = UnsafeApi.arrayBaseOffset(float[].class);
    private static final long INT_BASE = UnsafeApi.arrayBaseOffset(int[].class);

    byte op;
    Group group;
    int sequence;
    /** Source values (one of the three); for in-place operations the same memory as the destination. */
    float[] sendFloats;
    int[] sendInts;
    /** Source float values in an Agrona buffer (off-heap, or over a byte[]); value i at byte 4*i. */
    DirectBuffer sendBuffer;
    int sendOff;
    float[] recvFloats;
    int[] recvInts;
    MutableDirectBuffer recvBuffer;
    int recvOff;
    /** Values: per rank for reduce-scatter and all-gather, sent values for point-to-point. */
    int count;
    /** Received values of a point-to-point receive. */
    int recvCount;
    int[] sendCounts;
    int[] recvCounts;
    int root;
    /** Point-to-point destination and source (group ranks), -1 if unused. */
    int dest;
    int source;
    int sendSequence;
    int recvSequence;
    ReduceOp reduceOp;
    Fp8Compression compression;
    /** The lane the operation runs on, set when it is queued. */
    int lane;
    /** The failure of the operation, written before {@link #done}. */
    TransportException error;
    /** Set last by the driver when the operation finished (successfully or not). */
    volatile boolean done;

    /** Marks the operation finished; the request may be reused as soon as this returns. */
    void complete(final TransportException failure) {
        error = failure;
        done = true;
    }

    void clear() {
        done = false;
        error = null;
        lane = 0;
        op = 0;
        group = null;
        sendFloats = null;
        sendInts = null;
        sendBuffer = null;
        recvFloats = null;
        recvInts = null;
        recvBuffer = null;
        sendCounts = null;
        recvCounts = null;
        compression = null;
        reduceOp = null;
        sendOff = recvOff = count = recvCount = root = sequence = 0;
        dest = source = -1;
    }

    /**
     * The Unsafe base object of the source values: the array, or the buffer's byte[] (null off-heap).
     * Values are addressed as (base, address) pairs so that one copy serves heap and off-heap memory.
     */
    Object sendBase() {
        return sendFloats != null ? sendFloats : sendInts != null ? sendInts : sendBuffer == null ? null : sendBuffer.byteArray();
    }

    /** The Unsafe address of source value {@code index} relative to {@link #sendBase()}. */
    long sendAddress(final int index) {
        return (sendFloats != null ? FLOAT_BASE : sendInts != null ? INT_BASE : sendBuffer == null ? 0 : sendBuffer.addressOffset()) + 4L * index;
    }

    /** The Unsafe base object of the destination values (see {@link #sendBase()}). */
    Object recvBase() {
        return recvFloats != null ? recvFloats : recvInts != null ? recvInts : recvBuffer == null ? null : recvBuffer.byteArray();
    }

    /** The Unsafe address of destination value {@code index} relative to {@link #recvBase()}. */
    long recvAddress(final int index) {
        return (recvFloats != null ? FLOAT_BASE : recvInts != null ? INT_BASE : recvBuffer == null ? 0 : recvBuffer.addressOffset()) + 4L * index;
    }

    static String opName(final byte op) {
        switch (op) {
            case ALL_REDUCE: return "allReduce";
            case REDUCE_SCATTER: return "reduceScatter";
            case ALL_GATHER: return "allGather";
            case BROADCAST: return "broadcast";
            case ALL_TO_ALL: return "allToAll";
            case BARRIER: return "barrier";
            case P2P: return "sendRecv";
            default: return "op" + op;
        }
    }

    /** Human description for messages (allocates; only used on errors and in handles). */
    String describe() {
        final String type = sendInts != null || recvInts != null ? "ints" : "floats";
        final StringBuilder sb = new StringBuilder();
        if (op == P2P) {
            if (dest >= 0 && source >= 0) {
                sb.append("sendRecv(to ").append(dest).append(", from ").append(source).append(')');
            } else if (dest >= 0) {
                sb.append("send(to ").append(dest).append(") #").append(sendSequence);
            } else {
                sb.append("recv(from ").append(source).append(") #").append(recvSequence);
            }
        } else {
            sb.append(opName(op)).append(" #").append(sequence);
        }
        sb.append(" (group ").append(group == null ? -1 : group.id);
        if (op != BARRIER) {
            sb.append(", ").append(op == P2P && dest < 0 ? recvCount : count).append(' ').append(type);
            if (op == REDUCE_SCATTER || op == ALL_GATHER) {
                sb.append(" per rank");
            }
            if (compression != null) {
                sb.append(", ").append(compression);
            }
        }
        return sb.append(')').toString();
    }
}
