package io.moeflow.transport;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.SeekableByteChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.LinkOption;
import java.nio.file.OpenOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFileAttributeView;
import java.nio.file.attribute.PosixFileAttributes;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.nio.file.attribute.UserPrincipal;
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
     * Writes the token as hex to {@code file}, readable and writable by the owner only. The file is
     * created with {@code O_CREAT|O_EXCL} and mode 0600 in one system call: it is never briefly
     * readable by others, and an existing file or symbolic link at that path (a token of another job,
     * or a link planted by another user) makes this fail instead of being followed or overwritten.
     */
    public void writeTo(final Path file) throws IOException {
        final Path target = file.toAbsolutePath();
        final SeekableByteChannel channel;
        try {
            channel = Files.newByteChannel(target,
                Set.<OpenOption>of(StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE, LinkOption.NOFOLLOW_LINKS),
                PosixFilePermissions.asFileAttribute(OWNER_ONLY));
        } catch (final FileAlreadyExistsException e) {
            throw new FileAlreadyExistsException(file + ": a token file (or link) is already there and is never"
                + " overwritten; use a new job directory");
        }
        try (channel) {
            final ByteBuffer text = ByteBuffer.wrap((HexFormat.of().formatHex(secret) + "\n").getBytes(StandardCharsets.US_ASCII));
            while (text.hasRemaining()) {
                channel.write(text);
            }
        } catch (final IOException e) {
            Files.deleteIfExists(target); // this call created it (CREATE_NEW): never another job's file
            throw e;
        }
    }

    /**
     * Reads a token written by {@link #writeTo}. Refuses a symbolic link, a file owned by another
     * user, and a file that group or others may read or write: anyone who can read it can join the
     * job, anyone who can write it can swap in a token they know.
     */
    public static JobToken readFrom(final Path file) throws IOException {
        if (Files.isSymbolicLink(file)) {
            throw new IOException("token file " + file + " is a symbolic link; a token file must be a regular file"
                + " (the launcher writes one into the job directory)");
        }
        if (!Files.isRegularFile(file, LinkOption.NOFOLLOW_LINKS)) {
            throw new IOException("token file " + file + " does not exist; the job's launcher writes it");
        }
        final PosixFileAttributeView view = Files.getFileAttributeView(file, PosixFileAttributeView.class,
            LinkOption.NOFOLLOW_LINKS);
        if (view != null) {
            final PosixFileAttributes attributes = view.readAttributes();
            final UserPrincipal me = file.getFileSystem().getUserPrincipalLookupService()
                .lookupPrincipalByName(System.getProperty("user.name"));
            if (!attributes.owner().equals(me)) {
                throw new IOException("token file " + file + " is owned by " + attributes.owner().getName() + ", not by "
                    + me.getName() + " who runs this job; use a token file of your own");
            }
            final Set<PosixFilePermission> perms = attributes.permissions();
            if (perms.contains(PosixFilePermission.GROUP_READ) || perms.contains(PosixFilePermission.OTHERS_READ)
                || perms.contains(PosixFilePermission.GROUP_WRITE) || perms.contains(PosixFilePermission.OTHERS_WRITE)) {
                throw new IOException("token file " + file + " is readable or writable by others ("
                    + PosixFilePermissions.toString(perms) + "); run chmod 600 " + file + " or start a new job");
            }
        }
        final String text;
        try (SeekableByteChannel channel = Files.newByteChannel(file, StandardOpenOption.READ, LinkOption.NOFOLLOW_LINKS)) {
            final ByteBuffer bytes = ByteBuffer.allocate(4 * LENGTH_BYTES);
            while (bytes.hasRemaining() && channel.read(bytes) > 0) {
                // read at most a few times the expected size: a token file is tiny
            }
            text = new String(bytes.array(), 0, bytes.position(), StandardCharsets.US_ASCII).strip();
        }
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
