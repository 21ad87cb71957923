package io.moeflow.transport;

/**
 * The job failed: a rank stopped answering (silent for longer than the operation timeout), its
 * streams went away (killed, crashed), it closed its communicator while this rank still expected
 * data from it, or it sent data this rank cannot accept. {@link #peer()} names the rank that failed
 * first as this rank learned it: by detecting it itself or from the ABORT frame of the peer that
 * detected it. Every operation pending when the communicator fails completes with this one
 * exception; every later call throws a new one with the same peer and reason whose cause is it.
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
        this(rank, peer, operation, reason, detail, null);
    }

    public PeerFailureException(final int rank, final int peer, final String operation, final Reason reason,
                                final String detail, final Throwable cause) {
        super("rank " + rank + ": " + operation + " failed: " + detail, cause);
        this.rank = rank;
        this.peer = peer;
        this.operation = operation;
        this.reason = reason;
    }

    /** The rank (in the job) that noticed the failure. */
    public int rank() {
        return rank;
    }

    /** The rank (in the job) that failed first, or -1 if unknown. */
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
