package io.moeflow.transport;

import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.ReentrantLock;

import org.agrona.DirectBuffer;
import org.agrona.MutableDirectBuffer;
import org.agrona.concurrent.IdleStrategy;

/**
 * Executes the operations of all communicators of one process over one {@link Transport}.
 *
 * <p><b>Lanes.</b> Every operation is queued on one lane: urgent groups ({@link Communicator#urgent()})
 * on the urgent lane, the other groups on one of the bulk lanes by their split slot. A lane runs its
 * operations one at a time in issue order, over its own stream per pair of ranks, so every rank
 * drains a lane's frames in the same order; lanes are independent of each other. Whoever drives the
 * transport (a thread in a blocking call, or the progress thread while async operations are
 * pending) moves the head operation of every lane, round robin, under one lock: the transport is
 * used by one thread at a time and a blocking call never waits for another lane's queue.
 *
 * <p><b>Failures.</b> The first failure a rank sees (a lost peer, a timeout, a protocol error, or an
 * ABORT frame from a peer) fails the engine: the rank that detected it sends ABORT on the control
 * lane to every peer, naming the rank that failed and why, and every pending operation completes
 * with one {@link PeerFailureException}. The driver reads the control lane on every round, so a
 * peer's ABORT fails this rank's current and next operation at once. A timeout waiting for a peer
 * sends its ABORT first and fails only after a short grace in which a peer's verdict is taken
 * instead: the peer it names, if itself waiting, passes the blame on to the rank it waits for.
 */
final class Engine implements AutoCloseable {
    /**
     * Frame batches per lane per round while several lanes are busy (each batch is up to 4 frames
     * each way): bulk lanes take one while the urgent lane is busy, two otherwise; the urgent lane
     * and a lane alone take as many as move.
     */
    private static final int SHARED_ROUNDS = 2;
    /** How often an idle driver checks peers' liveness and timeouts. */
    private static final long SWEEP_INTERVAL_NS = TimeUnit.MILLISECONDS.toNanos(1);
    private static final int CONTROL_FRAMES_PER_POLL = 8;
    /** Upper bound of {@link #timeoutGraceNs}: a quarter of the operation timeout, at most this. */
    private static final long MAX_TIMEOUT_GRACE_NS = TimeUnit.SECONDS.toNanos(1);

    private final Transport transport;
    private final CommunicatorConfig config;
    private final int rank;
    private final int size;
    private final Lane[] lanes;
    private final int urgentLane;
    private final int firstBulkLane;
    private final int bulkLanes;
    private final IdleStrategy callerIdle;
    private final IdleStrategy progressIdle;
    private final Request blockingRequest = new Request();
    private final ReentrantLock driveLock = new ReentrantLock();
    private final ControlHandler control = new ControlHandler();
    /** Guards the lane queues, {@link #asyncPending}, {@link #failure} changes and the progress thread. */
    private final Object monitor = new Object();
    private int asyncPending;
    private Thread progressThread;
    private boolean stopping;
    private volatile boolean closed;
    private volatile PeerFailureException failure;
    private int rotation;
    /** The frame reader and writer all lanes share. */
    private final FrameIo io;
    private long nextSweepNs;
    /**
     * A timeout this rank detected and asked about (ABORT sent) but has not failed with yet: the
     * rank it waits for may answer with the rank it waits for itself (see {@link #sweep}).
     */
    private PeerFailureException pendingTimeout;
    private Request pendingTimeoutOrigin;
    private long pendingTimeoutDeadlineNs;
    private final long timeoutGraceNs;

    /** One ordered lane: its queue and the executor of its head operation. */
    private static final class Lane {
        final int id;
        final ScheduleExecutor executor;
        final ArrayDeque<Request> queue = new ArrayDeque<>(64);
        /** Queued operations, readable without the monitor. */
        volatile int queued;
        /** The operation being executed (driver only). */
        Request head;
        long lastProgressNs;

        Lane(final int id, final ScheduleExecutor executor) {
            this.id = id;
            this.executor = executor;
        }
    }

    Engine(final Transport transport, final CommunicatorConfig config) {
        this.transport = transport;
        this.config = config;
        this.rank = transport.rank();
        this.size = transport.size();
        final int laneCount = transport.lanes();
        if (laneCount < 2) {
            throw new IllegalArgumentException(transport.describe() + " has " + laneCount
                + " lanes: the engine needs a control lane and at least one data lane");
        }
        io = new FrameIo(transport);
        lanes = new Lane[laneCount];
        for (int lane = 1; lane < laneCount; lane++) {
            lanes[lane] = new Lane(lane, new ScheduleExecutor(rank, size, config, io, lane));
        }
        urgentLane = 1;
        firstBulkLane = laneCount >= 3 ? 2 : 1;
        bulkLanes = laneCount - firstBulkLane;
        callerIdle = config.idleMode().newIdleStrategy(config.maxIdleParkNs());
        progressIdle = config.idleMode().newIdleStrategy(config.maxIdleParkNs());
        timeoutGraceNs = Math.min(config.opTimeoutNs() / 4, MAX_TIMEOUT_GRACE_NS);
    }

    int rank() {
        return rank;
    }

    int size() {
        return size;
    }

    Transport transport() {
        return transport;
    }

    CommunicatorConfig config() {
        return config;
    }

    /** Registers a group of this process, before any member can send in it (see {@link FrameIo#registerGroup}). */
    void registerGroup(final int groupId) {
        io.registerGroup(groupId);
    }

    /** The request object that blocking calls fill (no allocation per call). */
    Request blockingRequest() {
        final Request r = blockingRequest;
        r.clear();
        return r;
    }

    /** The lane of a group's operations: urgent groups share the urgent lane, the others spread by slot. */
    int laneOf(final Group group) {
        return group.urgent ? urgentLane : firstBulkLane + Math.floorMod(group.slot, bulkLanes);
    }

    /**
     * Queues {@code r} on its lane and drives the transport on the calling thread until {@code r}
     * finished: earlier operations of the same lane finish first, other lanes move along.
     */
    void runBlocking(final Request r) {
        enqueue(r, false);
        final IdleStrategy idle = callerIdle;
        idle.reset();
        while (!r.done) {
            driveOnce(idle);
        }
        final TransportException error = r.error;
        if (error != null) {
            throw error;
        }
    }

    /** Queues {@code r} on its lane for the progress thread (and any blocking caller) to run. */
    CollectiveHandle submit(final AsyncRequest r) {
        enqueue(r, true);
        return r;
    }

    private void enqueue(final Request r, final boolean async) {
        r.lane = laneOf(r.group);
        synchronized (monitor) {
            checkUsable(r);
            final Lane lane = lanes[r.lane];
            lane.queue.addLast(r);
            lane.queued = lane.queue.size();
            if (async) {
                asyncPending++;
                if (progressThread == null) {
                    progressThread = new Thread(this::progressLoop, "moeflow-transport-rank" + rank);
                    progressThread.setDaemon(true);
                    progressThread.start();
                }
                monitor.notifyAll();
            }
        }
    }

    private void checkUsable(final Request r) {
        final PeerFailureException f = failure;
        if (f != null) {
            throw new PeerFailureException(rank, f.peer(), r.describe(), f.reason(), "the communicator failed earlier ("
                + f.getMessage() + "); create a new one (restart the job) to continue", f);
        }
        if (closed || stopping) {
            throw new IllegalStateException("rank " + rank + ": the communicator is closed");
        }
    }

    private void progressLoop() {
        final IdleStrategy idle = progressIdle;
        while (!closed) {
            synchronized (monitor) {
                while (asyncPending == 0) {
                    if (stopping) {
                        return;
                    }
                    try {
                        monitor.wait(1000);
                    } catch (final InterruptedException e) {
                        return;
                    }
                }
            }
            driveOnce(idle);
        }
    }

    /** One turn of whichever thread waits: drives every busy lane unless another thread is, then idles if nothing moved. */
    private void driveOnce(final IdleStrategy idle) {
        int work = 0;
        if (driveLock.tryLock()) {
            try {
                work = drive();
            } finally {
                driveLock.unlock();
            }
        }
        if (work > 0) {
            idle.reset();
        } else {
            idle.idle();
        }
    }

    /**
     * One round of the driver (caller holds {@link #driveLock}): reads the control lane, moves the
     * head operation of every lane, and when nothing moved checks liveness and timeouts.
     *
     * @return work done; 0 if nothing could move
     */
    private int drive() {
        if (failure != null) {
            failAll();
            return 1;
        }
        int work = 0;
        final long nowNs = System.nanoTime();
        if (pendingTimeout != null) {
            return driveTimeoutGrace(nowNs);
        }
        final Lane[] all = lanes;
        int busy = 0;
        for (int i = 1; i < all.length; i++) {
            if (all[i].head != null || all[i].queued > 0) {
                busy++;
            }
        }
        final boolean urgentBusy = all[urgentLane].head != null || all[urgentLane].queued > 0;
        final int bulkRounds = busy <= 1 ? ScheduleExecutor.MAX_ROUNDS_PER_PROGRESS : urgentBusy ? 1 : SHARED_ROUNDS;
        final int dataLanes = all.length - 1;
        rotation = rotation == Integer.MAX_VALUE ? 0 : rotation + 1;
        for (int i = 0; i < dataLanes; i++) {
            final Lane lane = all[1 + (rotation + i) % dataLanes];
            if (lane.head == null) {
                if (lane.queued == 0 || !startNext(lane, nowNs)) {
                    continue;
                }
            }
            final Request r = lane.head;
            try {
                final int moved = lane.executor.progress(lane.id == urgentLane ? ScheduleExecutor.MAX_ROUNDS_PER_PROGRESS
                    : bulkRounds);
                if (moved > 0) {
                    lane.lastProgressNs = nowNs;
                    work += moved;
                }
            } catch (final PeerFailureException e) {
                fail(e, r, true);
                return 1;
            } catch (final RuntimeException e) {
                fail(new PeerFailureException(rank, rank, r.describe(), PeerFailureException.Reason.PROTOCOL_ERROR,
                    "this rank could not run the operation: " + e, e), r, true);
                return 1;
            }
            if (lane.executor.isDone()) {
                finishHead(lane);
                work++;
            }
        }
        // after the data lanes: a peer's data sent before its ABORT has been seen, so a mismatch both
        // ranks can detect is reported by each in its own words
        work += pollControl();
        if (failure != null) {
            failAll();
            return 1;
        }
        if (work == 0) {
            work += transport.doHousekeeping();
            if (nowNs - nextSweepNs >= 0) {
                nextSweepNs = nowNs + SWEEP_INTERVAL_NS;
                sweep(nowNs);
            }
        }
        return work;
    }

    /**
     * While a detected timeout waits for its grace: only the control lane is read, and a peer's
     * ABORT (the rank this one waits for naming the rank it waits for, or any other failure) is
     * taken instead of this rank's own verdict; at the deadline this rank fails with its own.
     */
    private int driveTimeoutGrace(final long nowNs) {
        final int work = pollControl();
        if (failure != null) {
            failAll();
            return 1;
        }
        if (nowNs - pendingTimeoutDeadlineNs >= 0) {
            fail(pendingTimeout, pendingTimeoutOrigin, false); // its ABORT went out when it was detected
            return 1;
        }
        return work;
    }

    private boolean startNext(final Lane lane, final long nowNs) {
        final Request r;
        synchronized (monitor) {
            r = lane.queue.peekFirst();
        }
        if (r == null) {
            return false;
        }
        lane.head = r;
        lane.lastProgressNs = nowNs;
        try {
            lane.executor.plan(r);
        } catch (final RuntimeException e) {
            fail(new PeerFailureException(rank, rank, r.describe(), PeerFailureException.Reason.PROTOCOL_ERROR,
                "this rank could not plan the operation: " + e, e), r, true);
            return false;
        }
        return true;
    }

    private void finishHead(final Lane lane) {
        final Request r = lane.head;
        lane.head = null;
        final boolean async = r instanceof AsyncRequest;
        synchronized (monitor) {
            lane.queue.pollFirst();
            lane.queued = lane.queue.size();
            if (async) {
                asyncPending--;
                monitor.notifyAll();
            }
        }
        r.complete(null); // last: a blocking request is reused as soon as this returns
    }

    /** Liveness of every peer, and per lane the head operation's peer and silence. */
    private void sweep(final long nowNs) {
        final String local = transport.localFailure();
        if (local != null) {
            final Request r = anyHead();
            fail(new PeerFailureException(rank, rank, r == null ? "the job" : r.describe(),
                PeerFailureException.Reason.DISCONNECTED, local), r, true);
            return;
        }
        for (int peer = 0; peer < size; peer++) {
            final PeerFailureException.Reason state = peer == rank ? null : transport.peerState(peer);
            if (state != null && state != PeerFailureException.Reason.EXITED) {
                final Request r = anyHead();
                fail(new PeerFailureException(rank, peer, r == null ? "the job" : r.describe(), state,
                    transport.peerLost(peer)), r, true);
                return;
            }
        }
        for (int i = 1; i < lanes.length; i++) {
            final Lane lane = lanes[i];
            final Request r = lane.head;
            if (r == null) {
                continue;
            }
            final ScheduleExecutor ex = lane.executor;
            final int peer = ex.blockingPeer();
            if (peer >= 0 && transport.peerState(peer) != null) {
                fail(new PeerFailureException(rank, peer, r.describe(), transport.peerState(peer),
                    ex.describeWait() + "; " + transport.peerLost(peer)), r, true);
                return;
            }
            final long silentNs = nowNs - lane.lastProgressNs;
            if (silentNs > config.opTimeoutNs()) {
                final PeerFailureException timeout = new PeerFailureException(rank, peer, r.describe(),
                    PeerFailureException.Reason.TIMEOUT, "no data moved for " + TimeUnit.NANOSECONDS.toMillis(silentNs)
                        + " ms (timeout " + TimeUnit.NANOSECONDS.toMillis(config.opTimeoutNs()) + " ms), "
                        + ex.describeWait() + (peer >= 0 ? ". Is rank " + peer + " alive and calling the same operation?" : ""));
                if (peer < 0 || timeoutGraceNs <= 0) {
                    fail(timeout, r, true);
                    return;
                }
                // the rank waited for may itself wait for another (a chain ending at the silent
                // rank): tell everyone now, which asks that rank to pass the blame on, and take its
                // answer (or its own timeout's ABORT) if it comes within the grace
                broadcastAbort(timeout);
                pendingTimeout = timeout;
                pendingTimeoutOrigin = r;
                pendingTimeoutDeadlineNs = nowNs + timeoutGraceNs;
                return;
            }
        }
    }

    private Request anyHead() {
        for (int i = 1; i < lanes.length; i++) {
            if (lanes[i].head != null) {
                return lanes[i].head;
            }
        }
        return null;
    }

    /**
     * Fails the engine with {@code f} (the first failure wins), tells every peer when this rank
     * detected it, and completes every pending operation with the failure.
     */
    private void fail(final PeerFailureException f, final Request origin, final boolean detectedHere) {
        boolean first = false;
        synchronized (monitor) {
            if (failure == null) {
                failure = f;
                first = true;
            }
        }
        pendingTimeout = null;
        pendingTimeoutOrigin = null;
        if (first && detectedHere) {
            broadcastAbort(f);
        }
        failAll();
    }

    /** Completes every head and queued operation with the engine's failure. */
    private void failAll() {
        failAll(failure);
    }

    private void failAll(final TransportException f) {
        for (int i = 1; i < lanes.length; i++) {
            final Lane lane = lanes[i];
            lane.head = null;
            while (true) {
                final Request r;
                synchronized (monitor) {
                    r = lane.queue.pollFirst();
                    lane.queued = lane.queue.size();
                    if (r instanceof AsyncRequest) {
                        asyncPending--;
                        monitor.notifyAll();
                    }
                }
                if (r == null) {
                    break;
                }
                r.complete(f);
            }
        }
    }

    /** Sends ABORT naming the failed rank and the reason to every peer (best effort, bounded). */
    private void broadcastAbort(final PeerFailureException f) {
        final byte[] detail = f.getMessage().getBytes(StandardCharsets.UTF_8);
        final int detailLength = Math.min(detail.length, Wire.ABORT_MAX_DETAIL_BYTES);
        final int length = Wire.HEADER_LENGTH + detailLength;
        for (int peer = 0; peer < size; peer++) {
            if (peer == rank) {
                continue; // the failed rank too: if it still runs, it learns that the job failed
            }
            for (int attempt = 0; attempt < 10_000; attempt++) {
                final int offset = transport.tryClaim(peer, Transport.CONTROL_LANE, length);
                if (offset >= 0) {
                    final MutableDirectBuffer b = transport.claimBuffer(peer, Transport.CONTROL_LANE);
                    b.setMemory(offset, Wire.HEADER_LENGTH, (byte) 0);
                    Wire.putPreamble(b, offset, Wire.KIND_ABORT, (byte) 0);
                    b.putInt(offset + Wire.ABORT_OFFSET_FAILED_RANK, f.peer());
                    b.putInt(offset + Wire.ABORT_OFFSET_REASON, f.reason().ordinal());
                    b.putInt(offset + Wire.ABORT_OFFSET_REPORTER, rank);
                    b.putInt(offset + Wire.ABORT_OFFSET_DETAIL_LENGTH, detailLength);
                    b.putBytes(offset + Wire.HEADER_LENGTH, detail, 0, detailLength);
                    transport.commit(peer, Transport.CONTROL_LANE);
                    break;
                }
                if (offset != Transport.BACK_PRESSURED) {
                    break; // the peer is gone: nothing to tell
                }
                Thread.onSpinWait();
            }
        }
    }

    private int pollControl() {
        int work = 0;
        for (int peer = 0; peer < size; peer++) {
            if (peer != rank) {
                control.from = peer;
                work += transport.poll(peer, Transport.CONTROL_LANE, control, CONTROL_FRAMES_PER_POLL);
            }
        }
        final PeerFailureException aborted = control.aborted;
        if (aborted != null && failure == null) {
            if (aborted.peer() == rank && aborted.reason() == PeerFailureException.Reason.TIMEOUT && blamePassedOn(aborted)) {
                return work;
            }
            if (failsHereToo()) {
                return work;
            }
            fail(aborted, null, false);
        }
        return work;
    }

    /**
     * Before taking a peer's ABORT, one more pass over the lanes: what the peer sent before its
     * ABORT is there now, so a mismatch both ranks can see is reported by this rank in its own
     * words. True if that failed the engine.
     */
    private boolean failsHereToo() {
        for (int i = 1; i < lanes.length; i++) {
            final Lane lane = lanes[i];
            final Request r = lane.head;
            if (r == null) {
                continue;
            }
            try {
                lane.executor.progress(1);
            } catch (final PeerFailureException e) {
                fail(e, r, true);
                return true;
            } catch (final RuntimeException e) {
                return false;
            }
        }
        return false;
    }

    /**
     * A peer timed out waiting for this rank, but this rank is alive and itself waits for another
     * rank in an operation: the silence comes from further along the chain, so this rank names the
     * rank it waits for (and tells everyone) instead of accepting the blame.
     */
    private boolean blamePassedOn(final PeerFailureException report) {
        for (int i = 1; i < lanes.length; i++) {
            final Request r = lanes[i].head;
            final int waitsFor = r == null ? -1 : lanes[i].executor.blockingPeer();
            if (waitsFor >= 0 && waitsFor != rank) {
                fail(new PeerFailureException(rank, waitsFor, r.describe(), PeerFailureException.Reason.TIMEOUT,
                    lanes[i].executor.describeWait() + ", while a peer reported no data from this rank ("
                        + report.getMessage() + "). Is rank " + waitsFor + " alive and calling the same operation?"), r, true);
                return true;
            }
        }
        return false;
    }

    /** Reads ABORT frames from the control lane; drops and counts anything else a back-end passes on. */
    private final class ControlHandler implements FrameHandler {
        int from;
        PeerFailureException aborted;

        @Override
        public FrameAction onFrame(final DirectBuffer buffer, final int offset, final int length) {
            if (!Wire.isWellFormed(buffer, offset, length) || Wire.kind(buffer, offset) != Wire.KIND_ABORT) {
                transport.counters().onMalformedFrame();
                return FrameAction.CONTINUE;
            }
            final int failed = buffer.getInt(offset + Wire.ABORT_OFFSET_FAILED_RANK);
            final int reasonCode = buffer.getInt(offset + Wire.ABORT_OFFSET_REASON);
            final int detailLength = buffer.getInt(offset + Wire.ABORT_OFFSET_DETAIL_LENGTH);
            final PeerFailureException.Reason[] reasons = PeerFailureException.Reason.values();
            if (failed < -1 || failed >= size || reasonCode < 0 || reasonCode >= reasons.length || detailLength < 0
                || detailLength > Wire.ABORT_MAX_DETAIL_BYTES || Wire.HEADER_LENGTH + detailLength != length) {
                transport.counters().onMalformedFrame();
                return FrameAction.CONTINUE;
            }
            if (aborted == null) {
                final String detail = buffer.getStringWithoutLengthUtf8(offset + Wire.HEADER_LENGTH, detailLength);
                final Request r = anyHead();
                aborted = new PeerFailureException(rank, failed, r == null ? "the job" : r.describe(),
                    reasons[reasonCode], "rank " + failed + " failed first (" + reasons[reasonCode] + ", reported by rank "
                    + from + ": " + detail + ")");
            }
            return FrameAction.CONTINUE;
        }
    }

    /** Waits for queued async operations (bounded), stops the progress thread and closes the transport. */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        final long deadline = System.nanoTime() + config.opTimeoutNs();
        synchronized (monitor) {
            while (asyncPending > 0 && failure == null && System.nanoTime() < deadline) {
                try {
                    monitor.wait(100);
                } catch (final InterruptedException e) {
                    Thread.currentThread().interrupt();
                    break;
                }
            }
            stopping = true;
            monitor.notifyAll();
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
        driveLock.lock();
        try {
            if (failure == null) {
                failAll(new TransportException("rank " + rank + ": the communicator was closed before the operation finished"));
            }
            transport.close();
        } finally {
            driveLock.unlock();
        }
    }
}
