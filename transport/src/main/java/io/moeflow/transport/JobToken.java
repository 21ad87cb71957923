package io.moeflow.transport;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFileAttributeView;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.util.HexFormat;
import java.util.Set;

import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

/**
 * The secret of one job: 32 random bytes created by whoever starts the job and handed to the
 * workers in a file only the user can read. Every connection proves it holds the token with an
 * HMAC-SHA256 over both sides' fresh nonces (see the Aeron handshake), so a process of another job,
 * a stale worker or a stranger on the network is rejected. {@link #toString()} never shows it.
 */
public final class JobToken {
    /** Token length: 256 bits, the HMAC-SHA256 key size. */
    public static final int LENGTH_BYTES = 32;
    private static final Set<PosixFilePermission> OWNER_ONLY = PosixFilePermissions.fromString("rw-------");

    private final byte[] secret;

    private JobToken(final byte[] secret) {
        if (secret.length != LENGTH_BYTES) {
            throw new IllegalArgumentException("token length=" + secret.length + " bytes: must be " + LENGTH_BYTES);
        }
        this.secret = secret.clone();
    }

    /** A fresh random token. */
    public static JobToken generate() {
        final byte[] bytes = new byte[LENGTH_BYTES];
        new SecureRandom().nextBytes(bytes);
        return new JobToken(bytes);
    }

    /** A token from known bytes (tests, or a token passed by another launcher). */
    public static JobToken of(final byte[] secret) {
        return new JobToken(secret);
    }

    /**
     * Writes the token as hex to {@code file}, readable and writable by the owner only; the file is
     * created with those permissions (never briefly readable by others) and moved into place.
     */
    public void writeTo(final Path file) throws IOException {
        final Path dir = file.toAbsolutePath().getParent();
        final Path tmp = Files.createTempFile(dir, ".token", ".tmp", PosixFilePermissions.asFileAttribute(OWNER_ONLY));
        try {
            Files.writeString(tmp, HexFormat.of().formatHex(secret) + "\n", StandardCharsets.US_ASCII);
            if (Files.exists(file)) {
                throw new FileAlreadyExistsException(file + ": a token file is never overwritten; use a new job directory");
            }
            Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE);
        } finally {
            Files.deleteIfExists(tmp);
        }
    }

    /**
     * Reads a token written by {@link #writeTo}. Refuses a file that group or others may read,
     * since anyone who can read it can join the job.
     */
    public static JobToken readFrom(final Path file) throws IOException {
        if (!Files.isRegularFile(file)) {
            throw new IOException("token file " + file + " does not exist; the job's launcher writes it");
        }
        final PosixFileAttributeView view = Files.getFileAttributeView(file, PosixFileAttributeView.class);
        if (view != null) {
            final Set<PosixFilePermission> perms = view.readAttributes().permissions();
            if (perms.contains(PosixFilePermission.GROUP_READ) || perms.contains(PosixFilePermission.OTHERS_READ)) {
                throw new IOException("token file " + file + " is readable by others (" + PosixFilePermissions.toString(perms)
                    + "); run chmod 600 " + file + " or start a new job");
            }
        }
        final String text = Files.readString(file, StandardCharsets.US_ASCII).strip();
        if (text.length() != 2 * LENGTH_BYTES) {
            throw new IOException("token file " + file + " holds " + text.length() + " characters; expected "
                + 2 * LENGTH_BYTES + " hex digits");
        }
        try {
            return new JobToken(HexFormat.of().parseHex(text));
        } catch (final IllegalArgumentException e) {
            throw new IOException("token file " + file + " is not hex: " + e.getMessage(), e);
        }
    }

    /** HMAC-SHA256 of {@code message} under this token (handshakes only: allocates). */
    public byte[] mac(final byte[] message) {
        try {
            final Mac mac = Mac.getInstance("HmacSHA256");
            mac.init(new SecretKeySpec(secret, "HmacSHA256"));
            return mac.doFinal(message);
        } catch (final GeneralSecurityException e) {
            throw new IllegalStateException("HmacSHA256 is not available in this JVM", e);
        }
    }

    /** Compares two MACs in constant time. */
    public static boolean macEquals(final byte[] a, final byte[] b) {
        return MessageDigest.isEqual(a, b);
    }

    @Override
    public String toString() {
        return "JobToken[redacted]";
    }
}
