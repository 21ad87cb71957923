package io.moeflow.transport;

import java.nio.ByteOrder;

import org.agrona.DirectBuffer;
import org.agrona.MutableDirectBuffer;

/**
 * The MoEFlow frame format, shared by every back-end. A frame is one transport message: a 32-byte
 * little-endian header followed by a payload. Data frames carry a slice of one collective's block;
 * handshake frames ({@link #KIND_HELLO}, {@link #KIND_PROOF}, {@link #KIND_BYE}) are exchanged by
 * back-ends that authenticate their connections and are never seen by the collectives. An
 * {@link #KIND_ABORT} frame travels on the control lane (lane 0) and tells every peer that the job
 * failed, naming the rank that failed first and why.
 *
 * <pre>
 *  0 u8  magic 0x4D ('M')        1 u8  version (2)      2 u8 kind          3 u8 op code
 *  4 i32 group id                8 i32 operation sequence number of the group (or p2p sequence)
 * 12 i32 step of the algorithm  16 i32 element offset of this frame inside the step's block
 * 20 i32 elements in the block
 * 24 u8  codec (raw 32-bit, FP8 E4M3, FP8 E5M2)   25 u8 reduce op (0 none, 1 SUM, 2 AVERAGE)
 * 26 u8  reserved (0)                             27 u8 reserved (0)
 * 28 i32 elements in this frame
 * </pre>
 *
 * Payloads are raw little-endian 32-bit values ({@link #CODEC_RAW32}) or block-scaled FP8
 * ({@link io.moeflow.transport.fp8.Fp8Codec}). The header is redundant with the schedule on purpose:
 * it lets a receiver drop stale or foreign frames and name a mismatch (count, op, reduce op, codec)
 * instead of corrupting data. A back-end that authenticates frames (Aeron UDP) appends a tag after
 * the payload and strips it before the engine sees the frame; the layout above is what the engine sees.
 */
public final class Wire {
    /** Header length in bytes; a multiple of 16 so payloads stay aligned. */
    public static final int HEADER_LENGTH = 32;
    /** First byte of every frame. */
    public static final byte MAGIC = 0x4D;
    /** Version of this layout (2: codec and reduce op are one byte each). */
    public static final byte VERSION = 2;

    /** A slice of a collective or point-to-point payload. */
    public static final byte KIND_DATA = 1;
    /** Handshake challenge: the sender's fresh nonce. */
    public static final byte KIND_HELLO = 2;
    /** Handshake answer: an HMAC over both nonces, proving the sender holds the job token. */
    public static final byte KIND_PROOF = 3;
    /** The sender closed its end after finishing all its operations. */
    public static final byte KIND_BYE = 4;
    /**
     * The job failed: sent on the control lane to every peer by a rank that detects a failure
     * (a peer lost, an operation timed out, a protocol error). Layout after the 4-byte preamble:
     * <pre>
     *  4 i32 job-wide rank that failed first (-1 if unknown)
     *  8 i32 reason: ordinal of {@link PeerFailureException.Reason}
     * 12 i32 job-wide rank that detected it (the sender)
     * 16 i32 length of the detail text in bytes (UTF-8), at most {@link #ABORT_MAX_DETAIL_BYTES}
     * 20..31 zero
     * 32 detail text
     * </pre>
     */
    public static final byte KIND_ABORT = 5;

    public static final int OFFSET_MAGIC = 0;
    public static final int OFFSET_VERSION = 1;
    public static final int OFFSET_KIND = 2;
    public static final int OFFSET_OP = 3;
    public static final int OFFSET_GROUP = 4;
    public static final int OFFSET_SEQUENCE = 8;
    public static final int OFFSET_STEP = 12;
    public static final int OFFSET_ELEMENT_OFFSET = 16;
    public static final int OFFSET_BLOCK_ELEMENTS = 20;
    public static final int OFFSET_CODEC = 24;
    public static final int OFFSET_REDUCE_OP = 25;
    public static final int OFFSET_FRAME_ELEMENTS = 28;

    public static final int ABORT_OFFSET_FAILED_RANK = 4;
    public static final int ABORT_OFFSET_REASON = 8;
    public static final int ABORT_OFFSET_REPORTER = 12;
    public static final int ABORT_OFFSET_DETAIL_LENGTH = 16;
    /** Longest detail text of an ABORT frame; longer texts are cut. */
    public static final int ABORT_MAX_DETAIL_BYTES = 480;

    /** Payload is raw 32-bit values (float or int) in little-endian order. */
    public static final int CODEC_RAW32 = 0;
    /** Payload is block-scaled FP8 E4M3. */
    public static final int CODEC_FP8_E4M3 = 1;
    /** Payload is block-scaled FP8 E5M2. */
    public static final int CODEC_FP8_E5M2 = 2;

    /** Reduce op byte of an operation that does not reduce (copy, gather, all-to-all, barrier, p2p). */
    public static final int REDUCE_NONE = 0;

    static {
        if (ByteOrder.nativeOrder() != ByteOrder.LITTLE_ENDIAN) {
            // Payloads are copied as raw memory; a big-endian host would need byte swapping.
            throw new ExceptionInInitializerError("MoEFlow transport needs a little-endian CPU; this one is "
                + ByteOrder.nativeOrder());
        }
    }

    private Wire() {
    }

    /** True if the frame is long enough and starts with this version's magic. */
    public static boolean isWellFormed(final DirectBuffer buffer, final int offset, final int length) {
        return length >= HEADER_LENGTH && buffer.getByte(offset + OFFSET_MAGIC) == MAGIC
            && buffer.getByte(offset + OFFSET_VERSION) == VERSION;
    }

    /** The kind byte of a well-formed frame. */
    public static byte kind(final DirectBuffer buffer, final int offset) {
        return buffer.getByte(offset + OFFSET_KIND);
    }

    /** The reduce op byte of {@code op}: 1 + its ordinal, or {@link #REDUCE_NONE} for null. */
    public static int reduceOpCode(final ReduceOp op) {
        return op == null ? REDUCE_NONE : 1 + op.ordinal();
    }

    /** Name of a reduce op byte, for messages. */
    public static String reduceOpName(final int code) {
        return code == REDUCE_NONE ? "no reduction" : code >= 1 && code <= ReduceOp.values().length
            ? ReduceOp.values()[code - 1].name() : "reduce op " + code;
    }

    /** Name of a codec value, for messages. */
    public static String codecName(final int codec) {
        switch (codec) {
            case CODEC_RAW32: return "raw 32-bit";
            case CODEC_FP8_E4M3: return "FP8 E4M3";
            case CODEC_FP8_E5M2: return "FP8 E5M2";
            default: return "codec " + codec;
        }
    }

    /** Writes the common first bytes of a header. */
    public static void putPreamble(final MutableDirectBuffer buffer, final int offset, final byte kind, final byte op) {
        buffer.putByte(offset + OFFSET_MAGIC, MAGIC);
        buffer.putByte(offset + OFFSET_VERSION, VERSION);
        buffer.putByte(offset + OFFSET_KIND, kind);
        buffer.putByte(offset + OFFSET_OP, op);
    }
}
