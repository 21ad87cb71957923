package io.moeflow.launcher.launch;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.util.HexFormat;

/**
 * The secret a node agent or worker shows in its first rendezvous line: without it nobody gets the
 * job token. Handed to local workers in their environment (readable by the same user only, never on
 * a command line) and to remote agents on their standard input.
 */
public final class JoinKey {
    /** Environment variable that carries it to workers. */
    public static final String ENV = "MOEFLOW_JOIN_KEY";

    private JoinKey() {
    }

    /** 128 random bits as hex. */
    public static String generate() {
        final byte[] bytes = new byte[16];
        new SecureRandom().nextBytes(bytes);
        return HexFormat.of().formatHex(bytes);
    }

    /** Constant-time comparison. */
    static boolean matches(final String expected, final String offered) {
        return MessageDigest.isEqual(expected.getBytes(StandardCharsets.US_ASCII), offered.getBytes(StandardCharsets.US_ASCII));
    }
}
