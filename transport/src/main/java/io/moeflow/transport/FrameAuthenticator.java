package io.moeflow.transport;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;

import org.agrona.BufferUtil;
import org.agrona.DirectBuffer;
import org.agrona.MutableDirectBuffer;
import org.agrona.concurrent.UnsafeBuffer;

/**
 * Authenticates the frames of one direction of one connection: HMAC-SHA256 under a per-session
 * key, truncated to 16 bytes, over the frame's place in its stream (a back-end's position, 0 where
 * there is none), its sequence number and its bytes. The sender appends a trailer
 * <pre>
 *  0 u64 frame sequence number (1, 2, 3, ... per direction)     8 16 bytes tag
 * </pre>
 * and the receiver checks the tag and that the sequence number is the next one, so a forged,
 * altered or replayed frame is dropped. HMAC-SHA256 rather than a faster keyed hash because the JDK
 * has it with SHA instructions and nothing else is needed; the cost is measured by
 * {@code moeflow bench transport} (frame authentication on vs off).
 *
 * <p>Single-threaded; allocation-free after construction (the JDK's {@code Mac.doFinal} allocates,
 * so HMAC is computed here from a reused {@link MessageDigest}).
 */
public final class FrameAuthenticator {
    /** Tag bytes kept of the 32-byte HMAC: 128 bits, as GCM's and Poly1305's tags. */
    public static final int TAG_BYTES = 16;
    /** Bytes the authenticator appends to a frame. */
    public static final int TRAILER_LENGTH = 8 + TAG_BYTES;
    private static final int BLOCK_BYTES = 64;
    private static final int DIGEST_BYTES = 32;
    private static final byte[] KEY_LABEL = "moeflow-frames-v1".getBytes(StandardCharsets.US_ASCII);

    private final byte[] innerPad = new byte[BLOCK_BYTES];
    private final byte[] outerPad = new byte[BLOCK_BYTES];
    private final MessageDigest sha;
    private final byte[] prefix = new byte[16];
    private final UnsafeBuffer prefixBuffer = new UnsafeBuffer(prefix);
    private final byte[] scratch;
    private final byte[] inner = new byte[DIGEST_BYTES];
    private final byte[] tag = new byte[DIGEST_BYTES];

    /**
     * @param key            32-byte session key of this direction ({@link #deriveKey})
     * @param maxFrameLength longest frame to authenticate, trailer excluded
     */
    public FrameAuthenticator(final byte[] key, final int maxFrameLength) {
        if (key == null || key.length != DIGEST_BYTES) {
            throw new IllegalArgumentException("frame key must be " + DIGEST_BYTES + " bytes");
        }
        try {
            sha = MessageDigest.getInstance("SHA-256");
        } catch (final NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is not available in this JVM", e);
        }
        for (int i = 0; i < BLOCK_BYTES; i++) {
            final byte k = i < key.length ? key[i] : 0;
            innerPad[i] = (byte) (k ^ 0x36);
            outerPad[i] = (byte) (k ^ 0x5c);
        }
        scratch = new byte[maxFrameLength];
    }

    /**
     * The key of frames from {@code from} to {@code to} on one connection: HMAC-SHA256 under the job
     * token of both ranks, the job, both handshake nonces and the session of the sending stream.
     * Each direction and each connection has its own key. Allocates (handshake only).
     */
    public static byte[] deriveKey(final JobToken token, final int from, final int to, final int size, final long jobHash,
                                   final byte[] fromNonce, final byte[] toNonce, final int session) {
        final ByteBuffer b = ByteBuffer.allocate(KEY_LABEL.length + 4 * 4 + 8 + fromNonce.length + toNonce.length)
            .order(ByteOrder.LITTLE_ENDIAN);
        b.put(KEY_LABEL).putInt(from).putInt(to).putInt(size).putLong(jobHash).put(fromNonce).put(toNonce).putInt(session);
        return token.mac(b.array());
    }

    /**
     * Appends the trailer to the {@code frameLength} bytes at {@code offset}; the buffer must hold
     * {@link #TRAILER_LENGTH} more bytes after them.
     */
    public void seal(final MutableDirectBuffer buffer, final int offset, final int frameLength, final long position,
                     final long sequence) {
        compute(buffer, offset, frameLength, position, sequence);
        buffer.putLong(offset + frameLength, sequence);
        buffer.putBytes(offset + frameLength + 8, tag, 0, TAG_BYTES);
    }

    /**
     * True if the {@code length} bytes at {@code offset} (trailer included) end in the tag of the
     * frame, its sequence number and {@code position}. Compares in constant time.
     */
    public boolean verify(final DirectBuffer buffer, final int offset, final int length, final long position) {
        if (length < TRAILER_LENGTH || length - TRAILER_LENGTH > scratch.length) {
            return false;
        }
        final int frameLength = length - TRAILER_LENGTH;
        compute(buffer, offset, frameLength, position, buffer.getLong(offset + frameLength));
        int difference = 0;
        final int tagAt = offset + frameLength + 8;
        for (int i = 0; i < TAG_BYTES; i++) {
            difference |= tag[i] ^ buffer.getByte(tagAt + i);
        }
        return difference == 0;
    }

    /** The sequence number in the trailer of a sealed frame of {@code length} bytes (trailer included). */
    public static long sequence(final DirectBuffer buffer, final int offset, final int length) {
        return buffer.getLong(offset + length - TRAILER_LENGTH);
    }

    /** HMAC(key, position || sequence || frame) = SHA256(key^opad || SHA256(key^ipad || message)). */
    private void compute(final DirectBuffer buffer, final int offset, final int frameLength, final long position,
                         final long sequence) {
        prefixBuffer.putLong(0, position);
        prefixBuffer.putLong(8, sequence);
        sha.update(innerPad);
        sha.update(prefix);
        final byte[] array = buffer.byteArray();
        if (array != null) {
            sha.update(array, (int) (buffer.addressOffset() - BufferUtil.ARRAY_BASE_OFFSET) + offset, frameLength);
        } else {
            buffer.getBytes(offset, scratch, 0, frameLength);
            sha.update(scratch, 0, frameLength);
        }
        try {
            sha.digest(inner, 0, DIGEST_BYTES);
            sha.update(outerPad);
            sha.update(inner);
            sha.digest(tag, 0, DIGEST_BYTES);
        } catch (final java.security.DigestException e) {
            throw new IllegalStateException(e);
        }
    }
}
