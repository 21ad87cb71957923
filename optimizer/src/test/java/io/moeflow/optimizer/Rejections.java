package io.moeflow.optimizer;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.function.Executable;

/** Asserts that bad input fails with one clear {@link IllegalArgumentException} naming what was wrong. */
final class Rejections {

    private Rejections() {
    }

    /** {@code call} throws an IllegalArgumentException whose message contains {@code nameEqualsValue}. */
    static void assertRejected(final String nameEqualsValue, final Executable call) {
        final IllegalArgumentException e = assertThrows(IllegalArgumentException.class, call);
        assertTrue(e.getMessage().contains(nameEqualsValue),
                "message '" + e.getMessage() + "' should name " + nameEqualsValue);
    }
}
