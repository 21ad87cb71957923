package io.moeflow.transport;

/**
 * A peer stopped answering during an operation: it was silent for longer than the timeout, its
 * stream closed (the process exited or was killed), or it closed its communicator while this rank
 * still waited for it. Thrown once, by the operation that noticed; the communicator is then failed
 * and every later call throws a {@link TransportException} whose cause is this one.
 */
public final class PeerFailureException extends TransportException {
    private static final long serialVersionUID = 1L;

    /** What the peer did. */
    public enum Reason {
        /** No data moved for longer than the operation timeout. */
        TIMEOUT,
        /** The peer's stream went away without a goodbye (its process was killed, crashed or lost the network). */
        DISCONNECTED,
        /** The peer closed its communicator (or its process ended) while this rank still expected data from it. */
        EXITED,
        /** The peer sent data this rank cannot accept (a different count, compression or operation). */
        PROTOCOL_ERROR
    }

    private final int rank;
    private final int peer;
    private final String operation;
    private final Reason reason;

    public PeerFailureException(final int rank, final int peer, final String operation, final Reason reason,
                                final String detail) {
        super("rank " + rank + ": " + operation + " failed: " + detail);
        this.rank = rank;
        this.peer = peer;
        this.operation = operation;
        this.reason = reason;
    }

    /** The rank (in the job) that noticed the failure. */
    public int rank() {
        return rank;
    }

    /** The rank (in the job) that stopped answering, or -1 if unknown. */
    public int peer() {
        return peer;
    }

    /** The operation that failed, e.g. {@code "allReduce #12 (group 0, 4096 floats)"}. */
    public String operation() {
        return operation;
    }

    public Reason reason() {
        return reason;
    }
}
