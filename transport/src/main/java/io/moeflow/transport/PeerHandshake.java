package io.moeflow.transport;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.security.SecureRandom;

/**
 * The job-token handshake of one connection, as messages a back-end carries over whatever it has
 * (the RDMA back-end over each queue pair, bound to its receive regions; the Aeron back-end in
 * frames on its control lane, bound to its stream sessions). Each side sends a HELLO with a
 * fresh nonce and a back-end binding (for RDMA: the addresses and keys of its receive regions),
 * answers the peer's HELLO with a PROOF = HMAC-SHA256(job token, label, prover, verifier, size,
 * job, prover's nonce, verifier's nonce, prover's binding), and trusts the peer (and its binding)
 * only once the peer's PROOF echoes its own nonce and verifies. Without the token nobody can make a
 * PROOF, and a PROOF answers one challenge only.
 *
 * <p>Layout of both messages (little-endian):
 * <pre>
 *  0 u8 kind (HELLO 1, PROOF 2)   1 u8 version (1)   2 u16 binding bytes   4 i32 from   8 i32 to
 * 12 i32 size   16 i64 job hash   24 16 bytes nonce   40 16 bytes echoed nonce (PROOF)
 * 56 32 bytes MAC (PROOF)   88 binding
 * </pre>
 * Handshake only: allocates freely.
 */
public final class PeerHandshake {
    /** Kind byte of a HELLO. */
    public static final byte HELLO = 1;
    /** Kind byte of a PROOF. */
    public static final byte PROOF = 2;
    /** Bytes before the binding. */
    public static final int HEADER_BYTES = 88;
    /** Nonce bytes. */
    public static final int NONCE_BYTES = 16;
    private static final int MAC_BYTES = 32;
    private static final byte VERSION = 1;
    private static final byte[] LABEL = "moeflow-handshake-v1".getBytes(StandardCharsets.US_ASCII);

    private final JobToken token;
    private final int rank;
    private final int size;
    private final long jobHash;
    private final byte[] nonce = new byte[NONCE_BYTES];

    /** A fresh handshake (new nonce) of {@code rank} in a job of {@code size} ranks named {@code jobId}. */
    public PeerHandshake(final JobToken token, final String jobId, final int rank, final int size) {
        if (token == null || jobId == null) {
            throw new IllegalArgumentException("token and jobId are required");
        }
        this.token = token;
        this.rank = rank;
        this.size = size;
        this.jobHash = jobHash(jobId);
        new SecureRandom().nextBytes(nonce);
    }

    /** The first eight bytes of SHA-256 of the job id: binds messages to one job. */
    public static long jobHash(final String jobId) {
        try {
            return ByteBuffer.wrap(MessageDigest.getInstance("SHA-256").digest(jobId.getBytes(StandardCharsets.UTF_8)))
                .getLong();
        } catch (final NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is not available in this JVM", e);
        }
    }

    /** The HELLO this rank sends {@code peer}, carrying {@code binding} (at most 65535 bytes). */
    public byte[] hello(final int peer, final byte[] binding) {
        return message(HELLO, peer, new byte[NONCE_BYTES], new byte[MAC_BYTES], binding);
    }

    /**
     * The PROOF answering {@code peer}'s HELLO, or null if that HELLO is not for this rank and job
     * (then count it rejected). Binds this rank's own {@code binding}, the one its HELLO carried.
     */
    public byte[] proof(final int peer, final byte[] helloFromPeer, final byte[] binding) {
        if (!isFor(peer, helloFromPeer, HELLO)) {
            return null;
        }
        final byte[] theirNonce = field(helloFromPeer, 24, NONCE_BYTES);
        final byte[] mac = token.mac(macInput(rank, peer, nonce, theirNonce, binding));
        return message(PROOF, peer, theirNonce, mac, binding);
    }

    /**
     * The binding of {@code peer} if {@code proofFromPeer} proves that the peer holds the job token
     * and answers this rank's own HELLO; null otherwise (forged, replayed, other job or rank).
     */
    public byte[] verify(final int peer, final byte[] proofFromPeer) {
        if (!isFor(peer, proofFromPeer, PROOF)) {
            return null;
        }
        if (!MessageDigest.isEqual(field(proofFromPeer, 40, NONCE_BYTES), nonce)) {
            return null; // an answer to somebody else's challenge, or a replay
        }
        final byte[] binding = field(proofFromPeer, HEADER_BYTES, proofFromPeer.length - HEADER_BYTES);
        final byte[] expected = token.mac(macInput(peer, rank, field(proofFromPeer, 24, NONCE_BYTES), nonce, binding));
        return JobToken.macEquals(field(proofFromPeer, 56, MAC_BYTES), expected) ? binding : null;
    }

    /**
     * This side's nonce (a copy): with the peer's ({@link #nonceOf}) it lets a back-end derive keys
     * for the connection once the peer's PROOF verified (Aeron's frame keys).
     */
    public byte[] nonce() {
        return nonce.clone();
    }

    /** The sender's nonce in a HELLO or PROOF of at least {@link #HEADER_BYTES} bytes. */
    public static byte[] nonceOf(final byte[] message) {
        return field(message, 24, NONCE_BYTES);
    }

    /** The kind byte of a handshake message, or 0 if it is too short to be one. */
    public static byte kind(final byte[] message) {
        return message.length < HEADER_BYTES ? 0 : message[0];
    }

    private boolean isFor(final int peer, final byte[] m, final byte kind) {
        if (m == null || m.length < HEADER_BYTES || m[0] != kind || m[1] != VERSION) {
            return false;
        }
        final ByteBuffer b = ByteBuffer.wrap(m).order(ByteOrder.LITTLE_ENDIAN);
        return (b.getShort(2) & 0xffff) == m.length - HEADER_BYTES && b.getInt(4) == peer && b.getInt(8) == rank
            && b.getInt(12) == size && b.getLong(16) == jobHash;
    }

    private byte[] message(final byte kind, final int peer, final byte[] echo, final byte[] mac, final byte[] binding) {
        if (binding.length > 0xffff) {
            throw new IllegalArgumentException("binding of " + binding.length + " bytes: at most 65535");
        }
        final ByteBuffer b = ByteBuffer.allocate(HEADER_BYTES + binding.length).order(ByteOrder.LITTLE_ENDIAN);
        b.put(kind).put(VERSION).putShort((short) binding.length).putInt(rank).putInt(peer).putInt(size).putLong(jobHash)
            .put(nonce).put(echo).put(mac).put(binding);
        return b.array();
    }

    private byte[] macInput(final int from, final int to, final byte[] fromNonce, final byte[] toNonce, final byte[] binding) {
        final ByteBuffer b = ByteBuffer.allocate(LABEL.length + 3 * 4 + 8 + 2 * NONCE_BYTES + binding.length)
            .order(ByteOrder.LITTLE_ENDIAN);
        b.put(LABEL).putInt(from).putInt(to).putInt(size).putLong(jobHash).put(fromNonce).put(toNonce).put(binding);
        return b.array();
    }

    private static byte[] field(final byte[] m, final int at, final int length) {
        final byte[] f = new byte[length];
        System.arraycopy(m, at, f, 0, length);
        return f;
    }
}
