package io.moeflow.transport.rdma;

/** One work completion, reused: {@link Verbs#poll} fills caller-owned instances. */
public final class Completion {
    /** Opcode: a SEND of this rank completed. */
    public static final int SEND = 0;
    /** Opcode: an RDMA WRITE of this rank completed. */
    public static final int WRITE = 1;
    /** Opcode: a posted receive took a SEND (with immediate). */
    public static final int RECV = 2;
    /** Opcode: a posted receive took the immediate of a peer's RDMA WRITE. */
    public static final int RECV_WRITE_IMMEDIATE = 3;
    /** Status: success. */
    public static final int SUCCESS = 0;
    /** Status of work requests flushed because the queue pair went to the error state. */
    public static final int FLUSHED = 5;

    public long workId;
    public int peer;
    public int opcode;
    /** {@link #SUCCESS}, or the verbs status code ({@code ibv_wc_status}) of the failure. */
    public int status;
    public int byteLength;
    public int immediate;

    /** Copies every field of {@code other}. */
    public void set(final Completion other) {
        workId = other.workId;
        peer = other.peer;
        opcode = other.opcode;
        status = other.status;
        byteLength = other.byteLength;
        immediate = other.immediate;
    }

    /** Name of an opcode, for messages. */
    public static String opcodeName(final int opcode) {
        switch (opcode) {
            case SEND:
                return "SEND";
            case WRITE:
                return "RDMA WRITE";
            case RECV:
                return "RECV";
            case RECV_WRITE_IMMEDIATE:
                return "RECV (RDMA WRITE with immediate)";
            default:
                return "opcode " + opcode;
        }
    }
}
