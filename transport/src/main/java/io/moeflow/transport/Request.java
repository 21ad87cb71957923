package io.moeflow.transport;

/** Parameters of one operation (engine-internal). Blocking calls reuse one instance; async calls allocate one. */
class Request {
    static final byte ALL_REDUCE = 1;
    static final byte REDUCE_SCATTER = 2;
    static final byte ALL_GATHER = 3;
    static final byte BROADCAST = 4;
    static final byte ALL_TO_ALL = 5;
    static final byte BARRIER = 6;
    static final byte P2P = 7;

    byte op;
    Group group;
    int sequence;
    /** Source values; for in-place operations the same array as the destination. */
    float[] sendFloats;
    int[] sendInts;
    int sendOff;
    float[] recvFloats;
    int[] recvInts;
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

    void clear() {
        op = 0;
        group = null;
        sendFloats = null;
        sendInts = null;
        recvFloats = null;
        recvInts = null;
        sendCounts = null;
        recvCounts = null;
        compression = null;
        reduceOp = null;
        sendOff = recvOff = count = recvCount = root = sequence = 0;
        dest = source = -1;
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
