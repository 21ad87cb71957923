package io.moeflow.transport;

import java.util.ArrayDeque;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.ReentrantLock;

import org.agrona.concurrent.IdleStrategy;

/**
 * Executes the operations of all communicators of one process over one {@link Transport}, one at a
 * time and in issue order (the per-pair streams are shared by all groups, so every rank must drain
 * them in the same order). Blocking calls run on the caller's thread once earlier async operations
 * have finished; async calls are queued to a progress thread. The first failure fails the engine.
 */
final class Engine implements AutoCloseable {
    private final Transport transport;
    private final CommunicatorConfig config;
    private final ScheduleExecutor executor;
    private final IdleStrategy idle;
    private final Request blockingRequest = new Request();
    private final ReentrantLock executionLock = new ReentrantLock();
    private final ArrayDeque<AsyncRequest> queue = new ArrayDeque<>();
    private final int rank;
    private Thread progressThread;
    private boolean stopping;
    private volatile boolean closed;
    private volatile TransportException failure;

    Engine(final Transport transport, final CommunicatorConfig config) {
        this.transport = transport;
        this.config = config;
        this.rank = transport.rank();
        this.executor = new ScheduleExecutor(rank, transport.size(), config, new FrameIo(transport));
        this.idle = config.idleMode().newIdleStrategy(config.maxIdleParkNs());
    }

    int rank() {
        return rank;
    }

    int size() {
        return transport.size();
    }

    Transport transport() {
        return transport;
    }

    CommunicatorConfig config() {
        return config;
    }

    /** The request object that blocking calls fill (no allocation per call). */
    Request blockingRequest() {
        final Request r = blockingRequest;
        r.clear();
        return r;
    }

    /** Runs {@code r} on the calling thread after every queued async operation has finished. */
    void runBlocking(final Request r) {
        checkUsable();
        synchronized (queue) {
            while (!queue.isEmpty()) {
                checkUsable();
                try {
                    queue.wait(100);
                } catch (final InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new TransportException("rank " + rank + ": interrupted while waiting for earlier async operations");
                }
            }
        }
        execute(r);
    }

    /** Queues {@code r} for the progress thread. */
    CollectiveHandle submit(final AsyncRequest r) {
        checkUsable();
        synchronized (queue) {
            queue.addLast(r);
            queue.notifyAll();
            if (progressThread == null) {
                progressThread = new Thread(this::progressLoop, "moeflow-transport-rank" + rank);
                progressThread.setDaemon(true);
                progressThread.start();
            }
        }
        return r;
    }

    private void progressLoop() {
        while (true) {
            final AsyncRequest r;
            synchronized (queue) {
                while (queue.isEmpty()) {
                    if (stopping) {
                        return;
                    }
                    try {
                        queue.wait(1000);
                    } catch (final InterruptedException e) {
                        return;
                    }
                }
                r = queue.peekFirst();
            }
            TransportException error = null;
            try {
                execute(r);
            } catch (final TransportException e) {
                error = e;
            } catch (final RuntimeException e) {
                error = new TransportException("rank " + rank + ": " + r.operation() + " failed: " + e, e);
            }
            synchronized (queue) {
                queue.pollFirst();
                queue.notifyAll();
            }
            r.complete(error);
        }
    }

    private void checkUsable() {
        final TransportException f = failure;
        if (f != null) {
            throw new TransportException("rank " + rank + ": the communicator failed earlier (" + f.getMessage()
                + "); create a new one (restart the job) to continue", f);
        }
        if (closed) {
            throw new IllegalStateException("rank " + rank + ": the communicator is closed");
        }
    }

    private void execute(final Request r) {
        executionLock.lock();
        try {
            checkUsable();
            run(r);
        } catch (final TransportException e) {
            if (failure == null) {
                failure = e;
            }
            throw e;
        } finally {
            executionLock.unlock();
        }
    }

    private void run(final Request r) {
        final ScheduleExecutor ex = executor;
        ex.plan(r);
        long lastProgressNs = System.nanoTime();
        idle.reset();
        while (!ex.isDone()) {
            if (ex.progress() > 0) {
                lastProgressNs = System.nanoTime();
                idle.reset();
                continue;
            }
            transport.doHousekeeping();
            final int peer = ex.blockingPeer();
            if (peer >= 0) {
                final String lost = transport.peerLost(peer);
                if (lost != null) {
                    throw new PeerFailureException(rank, peer, r.describe(), PeerFailureException.Reason.DISCONNECTED,
                        ex.describeWait() + "; " + lost);
                }
            }
            final long silentNs = System.nanoTime() - lastProgressNs;
            if (silentNs > config.opTimeoutNs()) {
                throw new PeerFailureException(rank, peer, r.describe(), PeerFailureException.Reason.TIMEOUT,
                    "no data moved for " + TimeUnit.NANOSECONDS.toMillis(silentNs) + " ms (timeout "
                        + TimeUnit.NANOSECONDS.toMillis(config.opTimeoutNs()) + " ms), " + ex.describeWait()
                        + (peer >= 0 ? ". Is rank " + peer + " alive and calling the same operation?" : ""));
            }
            idle.idle();
        }
    }

    /** Waits for queued async operations (bounded), stops the progress thread and closes the transport. */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        final long deadline = System.nanoTime() + config.opTimeoutNs();
        synchronized (queue) {
            while (!queue.isEmpty() && failure == null && System.nanoTime() < deadline) {
                try {
                    queue.wait(100);
                } catch (final InterruptedException e) {
                    Thread.currentThread().interrupt();
                    break;
                }
            }
            stopping = true;
            queue.notifyAll();
        }
        final Thread t = progressThread;
        if (t != null) {
            try {
                t.join(TimeUnit.NANOSECONDS.toMillis(config.opTimeoutNs()) + 1000);
            } catch (final InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        closed = true;
        executionLock.lock();
        try {
            transport.close();
        } finally {
            executionLock.unlock();
        }
    }
}
