package io.moeflow.transport;

/** A transport operation failed; the message says which rank, which operation and what to do. */
public class TransportException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public TransportException(final String message) {
        super(message);
    }

    public TransportException(final String message, final Throwable cause) {
        super(message, cause);
    }
}
