package io.moeflow.transport;

/**
 * {@link CollectiveHandle#await(long)} gave up waiting; the operation itself is still running and
 * keeps its own timeout, so awaiting again later is allowed.
 */
public final class AwaitTimeoutException extends TransportException {
    private static final long serialVersionUID = 1L;

    public AwaitTimeoutException(final String message) {
        super(message);
    }
}
