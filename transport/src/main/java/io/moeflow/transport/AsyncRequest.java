package io.moeflow.transport;

/** A queued operation and its handle. */
final class AsyncRequest extends Request implements CollectiveHandle {
    private final Engine engine;
    private String description;

    AsyncRequest(final Engine engine) {
        this.engine = engine;
        clear();
    }

    @Override
    void complete(final TransportException failure) {
        synchronized (this) {
            super.complete(failure);
            notifyAll();
        }
    }

    @Override
    public boolean isDone() {
        return done;
    }

    @Override
    public void await(final long timeoutNs) {
        if (timeoutNs < 0) {
            throw new IllegalArgumentException("timeoutNs=" + timeoutNs + ": must be >= 0");
        }
        if (!done) {
            final long deadline = System.nanoTime() + timeoutNs;
            synchronized (this) {
                while (!done) {
                    final long remainingNs = deadline - System.nanoTime();
                    if (remainingNs <= 0) {
                        throw new AwaitTimeoutException("rank " + engine.rank() + ": " + operation()
                            + " not finished after " + timeoutNs / 1_000_000 + " ms of waiting; it is still running"
                            + " and fails by itself if its peers stay silent");
                    }
                    try {
                        wait(Math.max(1, remainingNs / 1_000_000), 0);
                    } catch (final InterruptedException e) {
                        Thread.currentThread().interrupt();
                        throw new TransportException("rank " + engine.rank() + ": interrupted while awaiting " + operation(), e);
                    }
                }
            }
        }
        final TransportException failure = error;
        if (failure != null) {
            throw failure;
        }
    }

    @Override
    public synchronized String operation() {
        if (description == null) {
            description = describe();
        }
        return description;
    }
}
