package io.moeflow.transport;

import org.agrona.DirectBuffer;
import org.agrona.MutableDirectBuffer;

/**
 * A group of ranks that run collectives together: the whole job ({@link Communicators#create}) or a
 * sub-group made with {@link #split}. Ranks and sizes here are positions in this group.
 *
 * <p><b>Rules.</b> Every member calls the same collectives of a group in the same order with the same
 * counts, op, {@code ReduceOp} and compression (the frame headers check it and a mismatch fails with
 * a message that says so). Use a communicator (and its sub-groups) from one application thread.
 *
 * <p><b>Operations in flight together.</b> Each group's operations run on one lane of the process:
 * the urgent views ({@link #urgent()}) of all groups share the urgent lane, and the other groups
 * spread over three bulk lanes: the job-wide group on bulk lane 0, the sub-groups of a group's k-th
 * split (k = 1, 2, ...) on the parent's bulk lane + k, modulo 3 (so the world's first two splits,
 * e.g. expert- and data-parallel groups, each get a lane of their own). A lane runs its operations one at a time in issue order, over
 * its own stream per pair of ranks; lanes progress together, round robin, driven by whichever thread
 * waits (a blocking call) or by the progress thread (while async operations are pending). So a
 * blocking call waits only for the operations issued before it on its own lane: an urgent token
 * all-to-all does not queue behind gradient buckets, and groups on different lanes may issue their
 * operations in any relative order. Groups that share a lane and a pair of ranks must issue their
 * operations on that lane in the same order on every rank. Results do not depend on the
 * interleaving: each operation adds in the fixed order of its schedule.
 *
 * <p><b>Results.</b> Reductions add in a fixed order, so every rank and every run gets the same bits
 * for the same inputs, group size and count. Buffers are {@code float[]}/{@code int[]} ranges
 * {@code [off, off+count)} (or Agrona buffers, off-heap); nothing is allocated per call by the
 * blocking methods. Async methods allocate one small handle; the caller must not touch the buffer
 * until the handle is done.
 *
 * <p><b>Failures.</b> The job fails as a whole: when any rank dies, closes its communicator while
 * others still expect data from it, or fails an operation (silent for
 * {@link CommunicatorConfig#opTimeoutNs()}, or sent data this rank cannot accept), the rank that
 * notices tells every other rank (an ABORT frame on the control lane), and every rank's current
 * and next operations fail with one {@link PeerFailureException} naming the rank that failed first
 * and why ({@link PeerFailureException.Reason}). A killed process is noticed by the transport's
 * liveness checks (Aeron: within half of {@code AeronTransportConfig.failureBoundNs}, 2 s by
 * default). The communicator is then failed: later calls throw at once.
 */
public interface Communicator extends AutoCloseable {
    /** This rank's position in the group, in [0, size). */
    int rank();

    /** Number of ranks in the group. */
    int size();

    /** The job-wide rank of group member {@code groupRank}. */
    int globalRank(int groupRank);

    /**
     * Splits this group into sub-groups (collective over this group): members that pass the same
     * {@code color} form one sub-group, ordered by {@code key} then by rank here. Typical use:
     * expert-parallel groups with {@code color = rank / epSize} and data-parallel groups with
     * {@code color = rank % epSize}.
     */
    Communicator split(int color, int key);

    /**
     * The urgent view of this group: the same members, whose operations run on the process's
     * urgent lane, so they never wait behind queued bulk operations (gradient buckets) of any group.
     * Use it for latency-critical operations: the token all-to-all, small control all-reduces
     * (global norm, loss). The view is made once and cached; calling {@code urgent()} per operation
     * costs nothing. Urgent operations have their own order, independent of bulk ones: the urgent
     * views of all groups share one lane, so every rank issues its urgent operations (of any group)
     * in the same order. {@code urgent().split(...)} makes ordinary (bulk) sub-groups.
     */
    Communicator urgent();

    /** Whether this is an urgent view ({@link #urgent()}). */
    boolean isUrgent();

    /** Returns when every member has entered the barrier (dissemination algorithm, ceil(log2 p) rounds). */
    void barrier();

    /** Copies {@code buf[off, off+count)} of member {@code root} to every member. */
    void broadcast(float[] buf, int off, int count, int root);

    /** Copies {@code buf[off, off+count)} of member {@code root} to every member. */
    void broadcast(int[] buf, int off, int count, int root);

    /** In-place all-reduce of {@code buf[off, off+count)}. */
    void allReduce(float[] buf, int off, int count, ReduceOp op);

    /** In-place all-reduce sending FP8 on the wire ({@code compression} null means float32). */
    void allReduce(float[] buf, int off, int count, ReduceOp op, Fp8Compression compression);

    /** Non-blocking {@link #allReduce(float[], int, int, ReduceOp, Fp8Compression)}. */
    CollectiveHandle allReduceAsync(float[] buf, int off, int count, ReduceOp op, Fp8Compression compression);

    /**
     * In-place reduce-scatter: {@code buf[off, off + size*countPerRank)} holds one block per member;
     * on return block {@code rank} holds the reduction of everyone's block {@code rank}. The other
     * blocks are used as scratch and hold partial sums afterwards.
     */
    void reduceScatter(float[] buf, int off, int countPerRank, ReduceOp op, Fp8Compression compression);

    /** Non-blocking {@link #reduceScatter}. */
    CollectiveHandle reduceScatterAsync(float[] buf, int off, int countPerRank, ReduceOp op, Fp8Compression compression);

    /**
     * In-place all-gather: member {@code r} contributes block {@code r} of
     * {@code buf[off, off + size*countPerRank)}; on return every member has all blocks.
     */
    void allGather(float[] buf, int off, int countPerRank, Fp8Compression compression);

    /** Non-blocking {@link #allGather(float[], int, int, Fp8Compression)}. */
    CollectiveHandle allGatherAsync(float[] buf, int off, int countPerRank, Fp8Compression compression);

    /** In-place all-gather of int blocks. */
    void allGather(int[] buf, int off, int countPerRank);

    /**
     * All-to-all with a count per peer (token dispatch and combine): the send buffer holds
     * {@code sendCounts[0]} values for member 0, then {@code sendCounts[1]} for member 1, and so on from
     * {@code sendOff}; the receive buffer gets {@code recvCounts[j]} values from member j, in member
     * order from {@code recvOff}. {@code recvCounts[j]} must equal member j's {@code sendCounts[rank]}
     * (exchange the counts first with an int all-to-all of one value per peer).
     */
    void allToAll(float[] send, int sendOff, int[] sendCounts, float[] recv, int recvOff, int[] recvCounts,
                  Fp8Compression compression);

    /** Non-blocking float {@link #allToAll(float[], int, int[], float[], int, int[], Fp8Compression)}. */
    CollectiveHandle allToAllAsync(float[] send, int sendOff, int[] sendCounts, float[] recv, int recvOff,
                                   int[] recvCounts, Fp8Compression compression);

    /** All-to-all of int values with a count per peer (see the float variant). */
    void allToAll(int[] send, int sendOff, int[] sendCounts, int[] recv, int recvOff, int[] recvCounts);

    /** Sends {@code buf[off, off+count)} to member {@code peer}, which must call a matching receive. */
    void send(int peer, float[] buf, int off, int count);

    /** Receives exactly {@code count} values from member {@code peer} into {@code buf[off..]}. */
    void recv(int peer, float[] buf, int off, int count);

    /** Sends int values to {@code peer}. */
    void send(int peer, int[] buf, int off, int count);

    /** Receives int values from {@code peer}. */
    void recv(int peer, int[] buf, int off, int count);

    /**
     * Sends to {@code dest} and receives from {@code source} at the same time (a pairwise exchange
     * that cannot deadlock on flow control, unlike send-then-receive on both sides).
     */
    void sendRecv(int dest, float[] sendBuf, int sendOff, int sendCount,
                  int source, float[] recvBuf, int recvOff, int recvCount);

    // Off-heap values. The same operations over float values in an Agrona buffer (an UnsafeBuffer over a
    // direct or memory-mapped ByteBuffer that the caller allocates once, or over a byte[]): value i of the
    // buffer is the float at byte 4*i, and off/count count values, as in the float[] methods. Frames are
    // copied straight from and reduced straight into the buffer's memory, with no staging copy, and the
    // results are bitwise those of the float[] methods for the same values.

    /** {@link #broadcast(float[], int, int, int)} of the 32-bit values in {@code buf}. */
    void broadcast(MutableDirectBuffer buf, int off, int count, int root);

    /** {@link #allReduce(float[], int, int, ReduceOp)} of the floats in {@code buf}. */
    void allReduce(MutableDirectBuffer buf, int off, int count, ReduceOp op);

    /** {@link #allReduce(float[], int, int, ReduceOp, Fp8Compression)} of the floats in {@code buf}. */
    void allReduce(MutableDirectBuffer buf, int off, int count, ReduceOp op, Fp8Compression compression);

    /** Non-blocking {@link #allReduce(MutableDirectBuffer, int, int, ReduceOp, Fp8Compression)}. */
    CollectiveHandle allReduceAsync(MutableDirectBuffer buf, int off, int count, ReduceOp op, Fp8Compression compression);

    /** {@link #reduceScatter(float[], int, int, ReduceOp, Fp8Compression)} of the floats in {@code buf}. */
    void reduceScatter(MutableDirectBuffer buf, int off, int countPerRank, ReduceOp op, Fp8Compression compression);

    /** Non-blocking {@link #reduceScatter(MutableDirectBuffer, int, int, ReduceOp, Fp8Compression)}. */
    CollectiveHandle reduceScatterAsync(MutableDirectBuffer buf, int off, int countPerRank, ReduceOp op,
                                        Fp8Compression compression);

    /** {@link #allGather(float[], int, int, Fp8Compression)} of the floats in {@code buf}. */
    void allGather(MutableDirectBuffer buf, int off, int countPerRank, Fp8Compression compression);

    /** Non-blocking {@link #allGather(MutableDirectBuffer, int, int, Fp8Compression)}. */
    CollectiveHandle allGatherAsync(MutableDirectBuffer buf, int off, int countPerRank, Fp8Compression compression);

    /** {@link #allToAll(float[], int, int[], float[], int, int[], Fp8Compression)} between Agrona buffers. */
    void allToAll(DirectBuffer send, int sendOff, int[] sendCounts, MutableDirectBuffer recv, int recvOff, int[] recvCounts,
                  Fp8Compression compression);

    /** Non-blocking {@link #allToAll(DirectBuffer, int, int[], MutableDirectBuffer, int, int[], Fp8Compression)}. */
    CollectiveHandle allToAllAsync(DirectBuffer send, int sendOff, int[] sendCounts, MutableDirectBuffer recv, int recvOff,
                                   int[] recvCounts, Fp8Compression compression);

    /** Sends the 32-bit values {@code buf[off, off+count)} to member {@code peer}. */
    void send(int peer, DirectBuffer buf, int off, int count);

    /** Receives exactly {@code count} 32-bit values from member {@code peer} into {@code buf} from value {@code off}. */
    void recv(int peer, MutableDirectBuffer buf, int off, int count);

    /** {@link #sendRecv(int, float[], int, int, int, float[], int, int)} between Agrona buffers. */
    void sendRecv(int dest, DirectBuffer sendBuf, int sendOff, int sendCount,
                  int source, MutableDirectBuffer recvBuf, int recvOff, int recvCount);

    /** Counters of this process's transport (shared by all its communicators). */
    TransportCounters counters();

    /**
     * Closes this communicator. Closing the job-wide communicator waits for pending async operations
     * (bounded by the operation timeout) and closes the transport; sub-groups just detach.
     */
    @Override
    void close();
}
