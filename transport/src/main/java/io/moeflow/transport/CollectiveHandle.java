package io.moeflow.transport;

/**
 * A non-blocking operation in flight. It runs on its group's lane after the operations issued
 * before it on that lane; operations of other lanes (other groups, urgent views) run alongside.
 */
public interface CollectiveHandle {
    /** True once the operation finished, successfully or not. */
    boolean isDone();

    /**
     * Waits for the operation to finish.
     *
     * @param timeoutNs how long to wait; the operation keeps running if this runs out
     * @throws AwaitTimeoutException if it did not finish within {@code timeoutNs}
     * @throws TransportException    if the operation failed (a {@link PeerFailureException} names the peer)
     */
    void await(long timeoutNs);

    /** The operation, for messages, e.g. {@code "allReduce #12 (group 0, 4096 floats)"}. */
    String operation();
}
