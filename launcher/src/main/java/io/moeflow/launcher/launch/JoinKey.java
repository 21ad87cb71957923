package io.moeflow.launcher.launch;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermission;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.util.EnumSet;
import java.util.HexFormat;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * The secret a node agent or worker shows in its first rendezvous line: without it nobody gets the
 * job token. Handed to local workers in their environment (readable by the same user only, never on
 * a command line) and to remote agents on their standard input or in a file only they can read.
 */
public final class JoinKey {
    /** Environment variable that carries it to workers (and, for a multi-node launch, to each node's launcher). */
    public static final String ENV = "MOEFLOW_JOIN_KEY";
    /** A key is 32 random bytes as 64 hex characters. */
    public static final int LENGTH_HEX = 64;
    /** How to make one, for error messages. */
    public static final String HOW_TO_MAKE = "openssl rand -hex 32";
    private static final Set<PosixFilePermission> OWNER_ONLY = EnumSet.of(PosixFilePermission.OWNER_READ,
        PosixFilePermission.OWNER_WRITE);

    private JoinKey() {
    }

    /** 256 random bits as hex. */
    public static String generate() {
        final byte[] bytes = new byte[LENGTH_HEX / 2];
        new SecureRandom().nextBytes(bytes);
        return HexFormat.of().formatHex(bytes);
    }

    /**
     * The job's key given to this launcher: from {@code file} ("-" = one line of {@code stdin}) when
     * not null, else from the environment variable {@link #ENV}; empty when neither was given.
     *
     * @throws IllegalArgumentException with what to do, when the file is missing, readable by others, not this
     *                                  user's, or the key is not 64 hex characters
     */
    public static Optional<String> read(final String file, final Map<String, String> env, final InputStream stdin) {
        if (file != null) {
            return Optional.of(check(file.equals("-") ? firstLine(stdin) : fromFile(Path.of(file)), "--join-key-file " + file));
        }
        final String fromEnv = env.get(ENV);
        return fromEnv == null || fromEnv.isBlank() ? Optional.empty() : Optional.of(check(fromEnv.strip(), ENV));
    }

    private static String firstLine(final InputStream stdin) {
        try {
            final String line = new BufferedReader(new InputStreamReader(stdin, StandardCharsets.US_ASCII)).readLine();
            if (line == null) {
                throw new IllegalArgumentException("--join-key-file -: standard input ended before the key; write the key (made with "
                    + HOW_TO_MAKE + ") as one line to the launcher's standard input");
            }
            return line.strip();
        } catch (final IOException e) {
            throw new IllegalArgumentException("--join-key-file -: cannot read standard input: " + e.getMessage(), e);
        }
    }

    private static String fromFile(final Path file) {
        if (!Files.isRegularFile(file)) {
            throw new IllegalArgumentException("--join-key-file " + file + ": no such file; write the key made with " + HOW_TO_MAKE
                + " into it and chmod 600 it");
        }
        try {
            final Set<PosixFilePermission> mode = Files.getPosixFilePermissions(file);
            if (!OWNER_ONLY.containsAll(mode)) {
                throw new IllegalArgumentException("--join-key-file " + file + ": others may read it (" + modeText(mode)
                    + "); make it private with chmod 600 " + file);
            }
            final String owner = Files.getOwner(file).getName();
            if (!owner.equals(System.getProperty("user.name"))) {
                throw new IllegalArgumentException("--join-key-file " + file + ": owned by " + owner + ", not by "
                    + System.getProperty("user.name") + " who runs this launcher; use a key file of your own");
            }
            final String text = Files.readString(file, StandardCharsets.US_ASCII).strip();
            return text.lines().findFirst().orElse("");
        } catch (final UnsupportedOperationException e) {
            throw new IllegalArgumentException("--join-key-file " + file + ": its file system has no POSIX permissions, so the key's "
                + "privacy cannot be checked; use a file on a POSIX file system or the " + ENV + " environment variable", e);
        } catch (final IOException e) {
            throw new IllegalArgumentException("--join-key-file " + file + ": cannot read it: " + e.getMessage(), e);
        }
    }

    private static String modeText(final Set<PosixFilePermission> mode) {
        return java.nio.file.attribute.PosixFilePermissions.toString(mode);
    }

    /** The key, after checking it is 64 hex characters. */
    static String check(final String key, final String where) {
        if (key.length() != LENGTH_HEX || !key.chars().allMatch(c -> Character.digit(c, 16) >= 0)) {
            throw new IllegalArgumentException(where + ": the join key must be " + LENGTH_HEX + " hex characters (got " + key.length()
                + " characters); make one with " + HOW_TO_MAKE);
        }
        return key;
    }

    /** Constant-time comparison. */
    static boolean matches(final String expected, final String offered) {
        return MessageDigest.isEqual(expected.getBytes(StandardCharsets.US_ASCII), offered.getBytes(StandardCharsets.US_ASCII));
    }
}
