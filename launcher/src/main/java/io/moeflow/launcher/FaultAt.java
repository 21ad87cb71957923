package io.moeflow.launcher;

import java.util.Locale;

import io.moeflow.checkpoint.FaultInjector;
import io.moeflow.checkpoint.SaveStage;

/**
 * The hidden {@code --fault-at STAGE:STEP} option for crash tests: halts the JVM (no shutdown
 * hooks, like {@code kill -9}) when the save of STEP reaches STAGE.
 */
final class FaultAt {
    /** Exit status of the halted JVM: 128 + SIGKILL, what a shell reports for kill -9. */
    static final int HALT_STATUS = 137;

    private FaultAt() {
    }

    static FaultInjector parse(final String spec) {
        if (spec == null) {
            return FaultInjector.NONE;
        }
        final String[] parts = spec.split(":");
        try {
            final SaveStage stage = SaveStage.valueOf(parts[0].toUpperCase(Locale.ROOT));
            final long step = Long.parseLong(parts[1]);
            return (at, atStep, path) -> {
                if (at == stage && atStep == step) {
                    System.err.println("moeflow: --fault-at " + spec + ": halting in the middle of the save of step " + step);
                    Runtime.getRuntime().halt(HALT_STATUS);
                }
            };
        } catch (final RuntimeException e) {
            throw new IllegalArgumentException("--fault-at " + spec + ": expected STAGE:STEP with STAGE one of "
                + java.util.Arrays.toString(SaveStage.values()));
        }
    }
}
