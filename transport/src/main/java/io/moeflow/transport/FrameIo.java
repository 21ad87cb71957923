package io.moeflow.transport;

import java.util.Arrays;

import org.agrona.DirectBuffer;
import org.agrona.MutableDirectBuffer;
import org.agrona.UnsafeApi;
import org.agrona.collections.IntHashSet;

import io.moeflow.transport.fp8.Fp8Codec;
import io.moeflow.transport.fp8.Fp8Format;

/**
 * Moves slices of an operation's values into and out of frames: the only code that touches payload
 * bytes. Values live in a float[]/int[] or in an Agrona buffer (off-heap, or over a byte[]); both
 * are addressed as Unsafe (base, address) pairs, so a send is one memory copy from either into the
 * frame, and a raw receive adds or copies straight out of the frame, with no staging copy of the
 * operation's data. FP8 goes through small scratch arrays that stay in cache. Used by one thread at
 * a time (the engine's driver), shared by the executors of all lanes; allocation-free after
 * construction.
 */
final class FrameIo {
    /** How a received slice is applied to the destination. */
    static final int COPY = 0;
    static final int SUM = 1;
    /** Sum, then divide by {@link Incoming#divisor}: the last reduction of an average. */
    static final int SUM_DIVIDE = 2;

    /** How a sent slice is quantized when the operation uses FP8. */
    static final int QUANTIZE_PLAIN = 0;
    /** First quantization of this rank's own or partially reduced data: apply the residual. */
    static final int QUANTIZE_FEEDBACK = 1;
    /** Owner's final block: apply the residual and keep the decoded values locally too. */
    static final int QUANTIZE_FEEDBACK_WRITE_BACK = 2;

    private static final long FLOAT_BASE = UnsafeApi.arrayBaseOffset(float[].class);
    private static final long BYTE_BASE = UnsafeApi.arrayBaseOffset(byte[].class);

    private final Transport transport;
    private final TransportCounters counters;
    /** Values per raw (float32/int32) frame to each peer: the peer's largest frame, less the header. */
    private final int[] maxRawElements;
    /** Values per FP8 frame to each peer. */
    private final int[] maxFp8Elements;
    /** The largest frame to or from any peer: longer ones are malformed. */
    private final int maxFrameLength;
    private final Fp8Codec e4m3 = new Fp8Codec(Fp8Format.E4M3);
    private final Fp8Codec e5m2 = new Fp8Codec(Fp8Format.E5M2);
    private final byte[] scratchBytes;
    private final float[] scratchFloats;
    /** FP8 from off-heap values: one frame's values, encoded (and written back) from here. */
    private final float[] stageFloats;
    /** Values per step of a reduction into off-heap memory (4 KiB per array: both stay in L1). */
    private static final int SUM_CHUNK = 1024;
    private final float[] sumAccumulator = new float[SUM_CHUNK];
    private final float[] sumAddend = new float[SUM_CHUNK];

    /**
     * A frame of the current group more than this many operations ahead of this rank is garbage: a
     * peer's streams are in order, so the first frame of a peer that moved on is of its next
     * operation with this rank, never one a thousand operations later.
     */
    static final int MAX_OPERATIONS_AHEAD = 1024;
    /** Largest reduce op byte ({@code values()} copies its array: not on the hot path). */
    private static final int MAX_REDUCE_OP_CODE = ReduceOp.values().length;

    /** Groups this process belongs to (registered before their first frame can arrive); others' frames are garbage. */
    private final IntHashSet knownGroups = new IntHashSet();
    /** Steps of the longest schedule: a frame of a later step is garbage. */
    private final int maxSteps;

    FrameIo(final Transport transport) {
        this.transport = transport;
        this.counters = transport.counters();
        this.maxSteps = ScheduleExecutor.maxSteps(transport.size());
        registerGroup(0); // the job-wide group
        final int size = transport.size();
        maxRawElements = new int[size];
        maxFp8Elements = new int[size];
        int largestFrame = Wire.HEADER_LENGTH;
        for (int peer = 0; peer < size; peer++) {
            if (peer == transport.rank()) {
                continue;
            }
            final int frame = transport.maxFrameLength(peer);
            final int payload = frame - Wire.HEADER_LENGTH;
            if (payload < 4 * Fp8Codec.BLOCK_LENGTH) {
                throw new IllegalArgumentException("maxFrameLength(" + peer + ")=" + frame + " of " + transport.describe()
                    + ": must be >= " + (Wire.HEADER_LENGTH + 4 * Fp8Codec.BLOCK_LENGTH));
            }
            maxRawElements[peer] = payload / 4;
            // as many values per FP8 frame as per raw frame (not 4x more), so that a batch of frames and its
            // decoded values stay in cache between receiving and forwarding
            maxFp8Elements[peer] = Math.min(payload / (Fp8Codec.BLOCK_LENGTH + 1), maxRawElements[peer] / Fp8Codec.BLOCK_LENGTH)
                * Fp8Codec.BLOCK_LENGTH;
            largestFrame = Math.max(largestFrame, frame);
        }
        maxFrameLength = largestFrame;
        final int largestPayload = largestFrame - Wire.HEADER_LENGTH;
        final int largestFp8 = Arrays.stream(maxFp8Elements).max().orElse(0);
        scratchBytes = new byte[largestPayload];
        scratchFloats = new float[Math.max(largestPayload / 4, largestFp8)];
        stageFloats = new float[largestFp8];
    }

    /** Copies {@code count} 32-bit values between any two (base, address) locations. */
    static void copyValues(final Object srcBase, final long srcAddress, final Object dstBase, final long dstAddress,
                           final int count) {
        if (count > 0) {
            UnsafeApi.copyMemory(srcBase, srcAddress, dstBase, dstAddress, 4L * count);
        }
    }

    private Fp8Codec codec(final int wireCodec) {
        return wireCodec == Wire.CODEC_FP8_E5M2 ? e5m2 : e4m3;
    }

    /** The header fields that identify a step's frames: what a sender writes and a receiver expects. */
    static class StepHeader {
        /** The lane the step's frames travel on (not in the header: each lane is its own stream). */
        int lane;
        byte op;
        int group;
        int sequence;
        int step;
        int blockElements;
        int codec;
        /** {@link Wire#reduceOpCode} of the operation: reducing operations must agree on it. */
        int reduceOp;
    }

    /** Header fields and source of the frames of one send step. */
    static final class Outgoing extends StepHeader {
        /** The source when it is a float[] (FP8 encodes from it directly), else null. */
        float[] srcFloats;
        /** Unsafe base and address of element 0 of the block: a float[]/int[] or an Agrona buffer's memory. */
        Object srcBase;
        long srcAddress;
        /** Index of element 0 of the block in the operation's values. */
        int blockStart;
        int quantize;
        float[] residual;
        /** Residual index of element 0 of the block. */
        int residualStart;
    }

    /** Values one frame to {@code peer} holds in {@code codec} (a {@code Wire.CODEC_*}). */
    int frameElements(final int peer, final int codec) {
        return codec == Wire.CODEC_RAW32 ? maxRawElements[peer] : maxFp8Elements[peer];
    }

    /**
     * Sends one frame with up to {@code maxElements} values of the block, starting at element {@code cursor}
     * (at most as many as {@code peer}'s largest frame holds).
     *
     * @return values sent (0 for a header-only frame), or -1 if the transport took no frame now
     */
    int send(final int peer, final Outgoing out, final int cursor, final int maxElements) {
        final boolean fp8 = out.codec != Wire.CODEC_RAW32;
        final int n = Math.min(maxElements, frameElements(peer, out.codec));
        final int payloadLength = fp8 ? Fp8Codec.encodedLength(n) : 4 * n;
        final int length = Wire.HEADER_LENGTH + payloadLength;
        final int offset = transport.tryClaim(peer, out.lane, length);
        if (offset < 0) {
            return -1;
        }
        final MutableDirectBuffer buffer = transport.claimBuffer(peer, out.lane);
        Wire.putPreamble(buffer, offset, Wire.KIND_DATA, out.op);
        buffer.putInt(offset + Wire.OFFSET_GROUP, out.group);
        buffer.putInt(offset + Wire.OFFSET_SEQUENCE, out.sequence);
        buffer.putInt(offset + Wire.OFFSET_STEP, out.step);
        buffer.putInt(offset + Wire.OFFSET_ELEMENT_OFFSET, cursor);
        buffer.putInt(offset + Wire.OFFSET_BLOCK_ELEMENTS, out.blockElements);
        buffer.putByte(offset + Wire.OFFSET_CODEC, (byte) out.codec);
        buffer.putByte(offset + Wire.OFFSET_REDUCE_OP, (byte) out.reduceOp);
        buffer.putShort(offset + Wire.OFFSET_REDUCE_OP + 1, (short) 0);
        buffer.putInt(offset + Wire.OFFSET_FRAME_ELEMENTS, n);
        final long target = buffer.addressOffset() + offset + Wire.HEADER_LENGTH;
        final int index = out.blockStart + cursor;
        if (fp8) {
            final float[] residual = out.quantize == QUANTIZE_PLAIN ? null : out.residual;
            final boolean writeBack = out.quantize == QUANTIZE_FEEDBACK_WRITE_BACK;
            final boolean staged = out.srcFloats == null;
            final long at = out.srcAddress + 4L * cursor;
            if (staged) {
                // off-heap values: this frame's values through a cache-resident array (the codec reads float[])
                copyValues(out.srcBase, at, stageFloats, FLOAT_BASE, n);
            }
            // one call site for both sources: C2 inlines the Vector API encoder here or boxes its vectors
            codec(out.codec).encode(staged ? stageFloats : out.srcFloats, staged ? 0 : index, n, residual,
                out.residualStart + cursor, writeBack, scratchBytes, 0);
            if (staged && writeBack) {
                copyValues(stageFloats, FLOAT_BASE, out.srcBase, at, n);
            }
            UnsafeApi.copyMemory(scratchBytes, BYTE_BASE, buffer.byteArray(), target, payloadLength);
        } else if (n > 0) {
            UnsafeApi.copyMemory(out.srcBase, out.srcAddress + 4L * cursor, buffer.byteArray(), target, payloadLength);
        }
        transport.commit(peer, out.lane);
        counters.onFrameSent(length);
        return n;
    }

    /**
     * Adds raw float32 values straight from a frame into {@code dst} (and, for {@link #SUM_DIVIDE},
     * divides): one pass, no scratch copy; C2 compiles this loop to vector code.
     */
    private void sumFromFrame(final Object frameArray, final long frameAddress, final float[] dst, final int index,
                              final int n) {
        // dst: [n] += frame: [n]; float addition is commutative, so both sides of a pair get the same bits
        for (int i = 0; i < n; i++) {
            dst[index + i] += UnsafeApi.getFloat(frameArray, frameAddress + 4L * i);
        }
    }

    /**
     * {@link #sumFromFrame} into off-heap (or byte[]-backed) destination memory. A loop of Unsafe reads
     * and writes of raw memory ran at scalar speed in a micro-benchmark (C2 apparently does not vectorize
     * it: the two sides may alias), so the values go through two 4 KiB arrays that stay in L1: copy in,
     * add array to array, copy back. The memory traffic is that of the plain loop; the extra copies hit L1.
     */
    private void sumFromFrameToMemory(final Object frameArray, final long frameAddress, final Object dstBase,
                                      final long dstAddress, final int n, final boolean divide, final float divisor) {
        final float[] acc = sumAccumulator;
        final float[] add = sumAddend;
        for (int done = 0; done < n; done += SUM_CHUNK) {
            final int m = Math.min(SUM_CHUNK, n - done);
            final long at = dstAddress + 4L * done;
            copyValues(dstBase, at, acc, FLOAT_BASE, m);
            copyValues(frameArray, frameAddress + 4L * done, add, FLOAT_BASE, m);
            if (divide) {
                // last reduction of an average: the correctly rounded quotient of the float sum
                for (int i = 0; i < m; i++) {
                    acc[i] = (acc[i] + add[i]) / divisor;
                }
            } else {
                // acc: [m] += add: [m]
                for (int i = 0; i < m; i++) {
                    acc[i] += add[i];
                }
            }
            copyValues(acc, FLOAT_BASE, dstBase, at, m);
        }
    }

    private void sumDivideFromFrame(final Object frameArray, final long frameAddress, final float[] dst, final int index,
                                    final int n, final float divisor) {
        // last reduction of an average: the correctly rounded quotient of the float sum
        for (int i = 0; i < n; i++) {
            dst[index + i] = (dst[index + i] + UnsafeApi.getFloat(frameArray, frameAddress + 4L * i)) / divisor;
        }
    }

    /** Receives frames from {@code peer} into {@code in}; returns frames consumed. */
    int poll(final int peer, final Incoming in, final int frameLimit) {
        return transport.poll(peer, in.lane, in, frameLimit);
    }

    /**
     * Registers a group of this process, so its frames are kept when they arrive early rather than
     * dropped as garbage. Call before any member can send in it (a split registers the child before
     * its all-gather: a peer can only use the child after that all-gather).
     */
    void registerGroup(final int groupId) {
        synchronized (knownGroups) {
            knownGroups.add(groupId);
            knownGroups.add(Group.childId(groupId, -1, 0)); // its urgent view, which any member may open at any time
        }
    }

    private boolean isKnownGroup(final int groupId) {
        synchronized (knownGroups) {
            return knownGroups.contains(groupId);
        }
    }

    Incoming newIncoming() {
        return new Incoming();
    }

    /**
     * Expectation and destination of the frames of one receive step. What happens to a frame:
     * <ul>
     *   <li>not a well-formed data frame: dropped, counted as malformed;</li>
     *   <li>of an earlier operation or step of the same sequence space, or a duplicate of values
     *       already received: dropped, counted as unexpected (stale);</li>
     *   <li>of this operation but disagreeing on the op, reduce op, count or codec: the operation
     *       fails with a {@link #mismatch} that names the field;</li>
     *   <li>impossible for any operation (unknown op, codec or reduce op byte, a step past the
     *       longest schedule), more than {@link #MAX_OPERATIONS_AHEAD} operations ahead, or of a group
     *       this process is not in: dropped, counted as malformed or unexpected (garbage);</li>
     *   <li>of a later operation or step, or of another group or sequence space: kept in the stream
     *       (it may be a fast peer's next operation) and reported in {@link #blocked}. Streams are in
     *       order and each process runs one operation at a time, so a peer whose frames of a later
     *       operation come first has already sent everything it will send this rank for this one:
     *       the executor fails the operation naming both operations instead of waiting.</li>
     * </ul>
     * Only accepted frames count as progress ({@link #frames}); a peer that sends only garbage
     * keeps no operation alive.
     */
    final class Incoming extends StepHeader implements FrameHandler {
        /** The destination when it is a float[] (reductions and FP8 decode write it directly), else null. */
        float[] dstFloats;
        /** Unsafe base and address of element 0 of the block: a float[]/int[] or an Agrona buffer's memory. */
        Object dstBase;
        long dstAddress;
        /** Index of element 0 of the block in the operation's values. */
        int blockStart;
        int mode;
        float divisor;
        /** Values of the block received so far. */
        int cursor;
        /** Frames accepted in this step (header-only frames count). */
        int frames;
        /** Values past this element may not be applied yet (the same step still has to send them). */
        int applyLimit;
        /** Set when the peer sent something this rank cannot accept; the operation fails with it. */
        String mismatch;
        /** Header of the last frame left in the stream because it belongs to another operation. */
        int blockedByGroup;
        int blockedBySequence;
        int blockedByStep;
        byte blockedByOp;
        boolean blocked;

        void reset(final int newStep, final int newBlockElements) {
            step = newStep;
            blockElements = newBlockElements;
            cursor = 0;
            frames = 0;
            applyLimit = Integer.MAX_VALUE;
            blocked = false;
        }

        @Override
        public FrameAction onFrame(final DirectBuffer buffer, final int offset, final int length) {
            if (!Wire.isWellFormed(buffer, offset, length) || Wire.kind(buffer, offset) != Wire.KIND_DATA
                || length > maxFrameLength) {
                counters.onMalformedFrame(); // (longer than any peer's frames: it would not fit the scratch arrays)
                return FrameAction.CONTINUE;
            }
            final byte frameOp = buffer.getByte(offset + Wire.OFFSET_OP);
            final int frameGroup = buffer.getInt(offset + Wire.OFFSET_GROUP);
            final int frameSequence = buffer.getInt(offset + Wire.OFFSET_SEQUENCE);
            final int frameStep = buffer.getInt(offset + Wire.OFFSET_STEP);
            final int frameCodecByte = buffer.getByte(offset + Wire.OFFSET_CODEC) & 0xFF;
            final int frameReduceOpByte = buffer.getByte(offset + Wire.OFFSET_REDUCE_OP) & 0xFF;
            final int elementOffset = buffer.getInt(offset + Wire.OFFSET_ELEMENT_OFFSET);
            final int frameBlockElements = buffer.getInt(offset + Wire.OFFSET_BLOCK_ELEMENTS);
            final int n = buffer.getInt(offset + Wire.OFFSET_FRAME_ELEMENTS);
            final int payloadLength = length - Wire.HEADER_LENGTH;
            final boolean frameFp8 = frameCodecByte != Wire.CODEC_RAW32;
            if (frameOp < Request.ALL_REDUCE || frameOp > Request.P2P || frameStep < 0 || frameStep >= maxSteps
                || frameCodecByte > Wire.CODEC_FP8_E5M2 || frameReduceOpByte > MAX_REDUCE_OP_CODE
                || n < 0 || elementOffset < 0 || frameBlockElements < 0 || n > frameBlockElements - elementOffset
                || payloadLength != (frameFp8 ? Fp8Codec.encodedLength(n) : 4 * n)) {
                counters.onMalformedFrame(); // inconsistent in itself, or no operation of any rank has such a frame
                return FrameAction.CONTINUE;
            }
            // sequence numbers compare only within one sequence space: a group's collectives, or its
            // point-to-point messages from this peer
            final boolean sameSpace = frameGroup == group && (frameOp == Request.P2P) == (op == Request.P2P);
            if (sameSpace && (frameSequence - sequence < 0 || frameSequence == sequence && frameOp == op && frameStep < step)) {
                counters.onUnexpectedFrame(); // from an earlier operation or step: stale
                return FrameAction.CONTINUE;
            }
            if (sameSpace && frameSequence - sequence > MAX_OPERATIONS_AHEAD || frameGroup != group && !isKnownGroup(frameGroup)) {
                counters.onUnexpectedFrame(); // too far ahead, or of a group this process is not in: garbage
                return FrameAction.CONTINUE;
            }
            if (sameSpace && frameSequence == sequence && frameOp != op) {
                mismatch = "the peer runs " + Request.opName(frameOp) + " #" + frameSequence + " where this rank runs "
                    + Request.opName(op) + " #" + sequence + ": do all ranks call the group's collectives in the same order?";
                return FrameAction.ABORT;
            }
            if (!sameSpace || frameSequence != sequence || frameStep != step) {
                blocked = true; // a later operation or step, or another group: keep it for later
                blockedByGroup = frameGroup;
                blockedBySequence = frameSequence;
                blockedByStep = frameStep;
                blockedByOp = frameOp;
                return FrameAction.ABORT;
            }
            final int frameCodec = frameCodecByte;
            final int frameReduceOp = frameReduceOpByte;
            if (frameBlockElements != blockElements) {
                mismatch = "the peer sends " + frameBlockElements + " values where this rank expects " + blockElements
                    + ": do all ranks pass the same count (and matching send/receive counts)?";
                return FrameAction.ABORT;
            }
            if (frameReduceOp != reduceOp) {
                mismatch = "the peer reduces with " + Wire.reduceOpName(frameReduceOp) + " where this rank uses "
                    + Wire.reduceOpName(reduceOp) + ": do all ranks pass the same ReduceOp?";
                return FrameAction.ABORT;
            }
            if (frameCodec != codec) {
                mismatch = "the peer sends " + Wire.codecName(frameCodec) + " where this rank expects " + Wire.codecName(codec)
                    + ": do all ranks pass the same compression?";
                return FrameAction.ABORT;
            }
            final boolean fp8 = frameFp8; // the same codec and count as this rank's: lengths checked above
            if (elementOffset != cursor) {
                counters.onUnexpectedFrame(); // a duplicate or a gap: a legitimate stream has neither
                return FrameAction.CONTINUE;
            }
            if (cursor + n > applyLimit) {
                return FrameAction.ABORT; // this rank must first send what the frame would overwrite
            }
            apply(buffer, offset + Wire.HEADER_LENGTH, payloadLength, n, fp8);
            cursor += n;
            frames++;
            counters.onFrameReceived(length);
            return cursor == blockElements ? FrameAction.BREAK : FrameAction.CONTINUE;
        }

        private void apply(final DirectBuffer buffer, final int payloadOffset, final int payloadLength, final int n,
                           final boolean fp8) {
            final int index = blockStart + cursor;
            final long at = dstAddress + 4L * cursor;
            final Object frameArray = buffer.byteArray();
            final long source = buffer.addressOffset() + payloadOffset;
            final float[] dst = dstFloats;
            if (!fp8) {
                if (mode == COPY) {
                    copyValues(frameArray, source, dstBase, at, n); // floats or ints
                } else if (dst != null) {
                    if (mode == SUM) {
                        sumFromFrame(frameArray, source, dst, index, n);
                    } else {
                        sumDivideFromFrame(frameArray, source, dst, index, n, divisor);
                    }
                } else {
                    sumFromFrameToMemory(frameArray, source, dstBase, at, n, mode == SUM_DIVIDE, divisor);
                }
                return;
            }
            UnsafeApi.copyMemory(frameArray, source, scratchBytes, BYTE_BASE, payloadLength);
            if (mode == COPY && dst != null) {
                codec(codec).decode(scratchBytes, 0, n, dst, index);
                return;
            }
            final float[] values = scratchFloats;
            codec(codec).decode(scratchBytes, 0, n, values, 0);
            if (mode == COPY) {
                copyValues(values, FLOAT_BASE, dstBase, at, n);
            } else if (dst != null) {
                if (mode == SUM) {
                    sumFromFrame(values, FLOAT_BASE, dst, index, n);
                } else {
                    sumDivideFromFrame(values, FLOAT_BASE, dst, index, n, divisor);
                }
            } else {
                sumFromFrameToMemory(values, FLOAT_BASE, dstBase, at, n, mode == SUM_DIVIDE, divisor);
            }
        }
    }
}
