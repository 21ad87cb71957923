package io.moeflow.launcher;

import java.lang.management.ManagementFactory;
import java.util.ArrayList;
import java.util.List;

import com.sun.management.HotSpotDiagnosticMXBean;

/**
 * The JVM flags MoEFlow's commands need, which {@code ./moeflow} and the build pass: checked before a
 * command runs, so that a plain {@code java -jar moeflow.jar train} fails with one line that says what
 * to add instead of a {@code NoClassDefFoundError} deep in a kernel.
 */
final class JvmFlags {
    /** Aeron and Agrona read {@code jdk.internal.misc.Unsafe}. */
    static final String ADD_OPENS = "--add-opens java.base/jdk.internal.misc=ALL-UNNAMED";
    /** The kernels use the incubating Vector API. */
    static final String ADD_MODULES = "--add-modules jdk.incubator.vector";
    /** Below this, C2 may keep the Vector API's vectors boxed in large kernels (docs/model.md, "C2 caveat"). */
    static final long MIN_TRAP_LIMIT = 1000;
    static final String TRAP_LIMIT = "-XX:PerMethodTrapLimit=" + MIN_TRAP_LIMIT;

    private JvmFlags() {
    }

    /** The flags this JVM lacks and cannot run without (empty when all are there). */
    static List<String> missingRequired() {
        final List<String> missing = new ArrayList<>();
        if (!Object.class.getModule().isOpen("jdk.internal.misc", JvmFlags.class.getModule())) {
            missing.add(ADD_OPENS);
        }
        if (ModuleLayer.boot().findModule("jdk.incubator.vector").isEmpty()) {
            missing.add(ADD_MODULES);
        }
        return missing;
    }

    /** True if C2's per-method trap limit is below {@link #MIN_TRAP_LIMIT} (training may run about 20% slower). */
    static boolean trapLimitTooLow() {
        try {
            final HotSpotDiagnosticMXBean hotSpot = ManagementFactory.getPlatformMXBean(HotSpotDiagnosticMXBean.class);
            return hotSpot != null && Long.parseLong(hotSpot.getVMOption("PerMethodTrapLimit").getValue()) < MIN_TRAP_LIMIT;
        } catch (final IllegalArgumentException e) {
            return false; // not HotSpot: the flag does not exist there
        }
    }
}
