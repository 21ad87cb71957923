package io.moeflow.transport.rdma;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayDeque;
import java.util.HashMap;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

import org.agrona.BufferUtil;

/**
 * A fabric of {@link InMemoryVerbs}, one per rank of this JVM, with the semantics the protocol
 * relies on: reliable-connected queue pairs that deliver in order, SENDs that wait for a posted
 * receive (as RNR retry does), one-sided RDMA WRITEs checked against the target's registration and
 * key, and completions of different queue pairs handed out in a random interleaving. Tests inject
 * what hardware does on bad days: a completion error ({@link #failNextPost}), a lost connection
 * ({@link #disconnect}), a dead rank ({@link #kill}). Coarse-locked: a test double, not a fast path.
 */
public final class InMemoryFabric {
    /** {@code IBV_WC_LOC_LEN_ERR}: a SEND longer than the posted receive. */
    public static final int STATUS_LENGTH_ERROR = 1;
    /** {@code IBV_WC_REM_ACCESS_ERR}: a WRITE outside the target's registration or under a wrong key. */
    public static final int STATUS_REMOTE_ACCESS_ERROR = 10;
    /** {@code IBV_WC_RETRY_EXC_ERR}: the transport retry counter was exceeded (peer unreachable). */
    public static final int STATUS_RETRY_EXCEEDED = 12;

    private final int size;
    private final InMemoryVerbs[] verbs;
    private final Qp[][] qps;
    private final boolean[][] wants;
    private final boolean[] dead;
    private final int[] failNext;
    private final Map<Integer, Registration> regions = new HashMap<>();
    private final SplittableRandom random;
    private final int[] registrations;
    private int nextKey = 1;

    private record Registration(int owner, MemoryRegion region) {
    }

    private record RecvWr(long workId, MemoryRegion region, int offset, int length) {
    }

    private record Inbound(byte[] data, boolean isWrite, int immediate) {
    }

    /** One end of a connected queue pair. */
    final class Qp implements QueuePair {
        private final int owner;
        private final int peer;
        private final ArrayDeque<RecvWr> posted = new ArrayDeque<>();
        private final ArrayDeque<Inbound> waiting = new ArrayDeque<>();
        private final ArrayDeque<Completion> cq = new ArrayDeque<>();
        private boolean connected = true;

        Qp(final int owner, final int peer) {
            this.owner = owner;
            this.peer = peer;
        }

        @Override
        public int peer() {
            return peer;
        }

        @Override
        public boolean postRecv(final long workId, final MemoryRegion region, final int offset, final int lengthBytes) {
            synchronized (InMemoryFabric.this) {
                if (!connected) {
                    return false;
                }
                posted.addLast(new RecvWr(workId, region, offset, lengthBytes));
                while (!waiting.isEmpty() && !posted.isEmpty() && connected) {
                    deliver(waiting.pollFirst());
                }
                return true;
            }
        }

        @Override
        public boolean postSend(final long workId, final MemoryRegion region, final int offset, final int lengthBytes,
                                final int immediate) {
            synchronized (InMemoryFabric.this) {
                if (!connected) {
                    return false;
                }
                if (injected(workId, Completion.SEND)) {
                    return true;
                }
                final byte[] data = new byte[lengthBytes];
                region.view().getBytes(offset, data);
                remote().arrive(new Inbound(data, false, immediate));
                if (connected) {
                    complete(this, workId, Completion.SEND, Completion.SUCCESS, lengthBytes, 0);
                }
                return true;
            }
        }

        @Override
        public boolean postWrite(final long workId, final MemoryRegion region, final int offset, final int lengthBytes,
                                 final long remoteAddress, final int remoteKey, final boolean withImmediate, final int immediate) {
            synchronized (InMemoryFabric.this) {
                if (!connected) {
                    return false;
                }
                if (injected(workId, Completion.WRITE)) {
                    return true;
                }
                final Registration target = regions.get(remoteKey);
                if (target == null || target.owner() != peer || remoteAddress < target.region().address()
                    || remoteAddress + lengthBytes > target.region().address() + target.region().lengthBytes()) {
                    complete(this, workId, Completion.WRITE, STATUS_REMOTE_ACCESS_ERROR, 0, 0);
                    breakPair(this);
                    return true;
                }
                final int at = (int) (remoteAddress - target.region().address());
                target.region().view().putBytes(at, region.view(), offset, lengthBytes);
                if (withImmediate) {
                    remote().arrive(new Inbound(new byte[lengthBytes], true, immediate));
                }
                if (connected) {
                    complete(this, workId, Completion.WRITE, Completion.SUCCESS, lengthBytes, 0);
                }
                return true;
            }
        }

        @Override
        public boolean connected() {
            synchronized (InMemoryFabric.this) {
                return connected;
            }
        }

        @Override
        public void close() {
            synchronized (InMemoryFabric.this) {
                breakPair(this);
            }
        }

        private Qp remote() {
            return qps[peer][owner];
        }

        private boolean injected(final long workId, final int opcode) {
            if (failNext[owner * size + peer] == 0) {
                return false;
            }
            final int status = failNext[owner * size + peer];
            failNext[owner * size + peer] = 0;
            complete(this, workId, opcode, status, 0, 0);
            breakPair(this);
            return true;
        }

        /** An inbound SEND or WRITE-with-immediate: takes the next posted receive, or waits for one (RNR retry). */
        private void arrive(final Inbound in) {
            if (!connected) {
                return;
            }
            if (posted.isEmpty() || !waiting.isEmpty()) {
                waiting.addLast(in);
            } else {
                deliver(in);
            }
        }

        private void deliver(final Inbound in) {
            final RecvWr wr = posted.pollFirst();
            if (in.isWrite()) {
                complete(this, wr.workId(), Completion.RECV_WRITE_IMMEDIATE, Completion.SUCCESS, in.data().length, in.immediate());
                return;
            }
            if (in.data().length > wr.length()) {
                complete(this, wr.workId(), Completion.RECV, STATUS_LENGTH_ERROR, 0, 0);
                breakPair(this);
                return;
            }
            wr.region().view().putBytes(wr.offset(), in.data());
            complete(this, wr.workId(), Completion.RECV, Completion.SUCCESS, in.data().length, in.immediate());
        }
    }

    /**
     * @param size          ranks
     * @param reorderSeed   seed of the interleaving of completions across queue pairs
     */
    public InMemoryFabric(final int size, final long reorderSeed) {
        this.size = size;
        this.verbs = new InMemoryVerbs[size];
        this.qps = new Qp[size][size];
        this.wants = new boolean[size][size];
        this.dead = new boolean[size];
        this.failNext = new int[size * size];
        this.registrations = new int[size];
        this.random = new SplittableRandom(reorderSeed);
        for (int r = 0; r < size; r++) {
            verbs[r] = new InMemoryVerbs(this, r);
        }
    }

    public int size() {
        return size;
    }

    /** The verbs of one rank. */
    public Verbs verbs(final int rank) {
        return verbs[rank];
    }

    /** Memory registrations rank {@code rank} made so far. */
    public synchronized int registrations(final int rank) {
        return registrations[rank];
    }

    /** The next work request {@code from} posts to {@code to} completes with {@code status} and breaks the queue pair. */
    public synchronized void failNextPost(final int from, final int to, final int status) {
        failNext[from * size + to] = status;
    }

    /** The connection between two ranks is lost: both queue pairs disconnect, posted receives flush. */
    public synchronized void disconnect(final int a, final int b) {
        if (qps[a][b] != null) {
            breakPair(qps[a][b]);
        }
    }

    /** The rank dies: all its connections are lost and it can connect no more. */
    public synchronized void kill(final int rank) {
        dead[rank] = true;
        for (int peer = 0; peer < size; peer++) {
            disconnect(rank, peer);
        }
        notifyAll();
    }

    synchronized MemoryRegion register(final int owner, final ByteBuffer buffer) throws IOException {
        if (!buffer.isDirect()) {
            throw new IOException("only direct buffers can be registered");
        }
        final int key = nextKey++;
        final MemoryRegion region = new MemoryRegion(buffer, BufferUtil.address(buffer), key, key);
        regions.put(key, new Registration(owner, region));
        registrations[owner]++;
        return region;
    }

    synchronized QueuePair connect(final int rank, final int peer, final long timeoutNs) throws IOException {
        if (peer < 0 || peer >= size || peer == rank) {
            throw new IOException("no rank " + peer + " to connect to");
        }
        wants[rank][peer] = true;
        notifyAll();
        final long deadline = System.nanoTime() + timeoutNs;
        while (!wants[peer][rank] || dead[peer]) {
            if (dead[peer] || dead[rank]) {
                throw new IOException("rank " + peer + " is unreachable (connection refused)");
            }
            final long left = deadline - System.nanoTime();
            if (left <= 0) {
                throw new IOException("rank " + peer + " did not accept within " + TimeUnit.NANOSECONDS.toMillis(timeoutNs) + " ms");
            }
            try {
                wait(Math.max(1, TimeUnit.NANOSECONDS.toMillis(left)));
            } catch (final InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IOException("interrupted while connecting to rank " + peer, e);
            }
        }
        if (qps[rank][peer] == null || !qps[rank][peer].connected) {
            qps[rank][peer] = new Qp(rank, peer);
            qps[peer][rank] = new Qp(peer, rank);
        }
        return qps[rank][peer];
    }

    /** Moves ready completions of {@code rank}'s queue pairs into {@code out}, interleaving queue pairs at random. */
    synchronized int poll(final int rank, final Completion[] out) {
        int n = 0;
        while (n < out.length) {
            int ready = 0;
            for (int peer = 0; peer < size; peer++) {
                if (qps[rank][peer] != null && !qps[rank][peer].cq.isEmpty()) {
                    ready++;
                }
            }
            if (ready == 0) {
                break;
            }
            int pick = random.nextInt(ready);
            for (int peer = 0; peer < size; peer++) {
                final Qp qp = qps[rank][peer];
                if (qp != null && !qp.cq.isEmpty() && pick-- == 0) {
                    out[n++].set(qp.cq.pollFirst());
                    break;
                }
            }
        }
        return n;
    }

    synchronized void close(final int rank) {
        for (int peer = 0; peer < size; peer++) {
            disconnect(rank, peer);
        }
        regions.values().removeIf(r -> r.owner() == rank);
        wants[rank] = new boolean[size];
    }

    private void complete(final Qp qp, final long workId, final int opcode, final int status, final int byteLength,
                          final int immediate) {
        final Completion c = new Completion();
        c.workId = workId;
        c.peer = qp.peer;
        c.opcode = opcode;
        c.status = status;
        c.byteLength = byteLength;
        c.immediate = immediate;
        qp.cq.addLast(c);
    }

    /** Both ends go to the error state; their posted receives complete flushed. */
    private void breakPair(final Qp qp) {
        for (final Qp end : new Qp[] {qp, qps[qp.peer][qp.owner]}) {
            if (end == null || !end.connected) {
                continue;
            }
            end.connected = false;
            end.waiting.clear();
            while (!end.posted.isEmpty()) {
                complete(end, end.posted.pollFirst().workId(), Completion.RECV, Completion.FLUSHED, 0, 0);
            }
        }
    }
}
