package io.moeflow.launcher;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Paths;
import java.util.List;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Test;

class JvmFlagsTest {
    @Test
    void shouldFindEveryFlagInAJvmStartedByTheBuild() {
        assertEquals(List.of(), JvmFlags.missingRequired(), "Surefire's argLine (moeflow.jvm.flags) lacks these");
        assertFalse(JvmFlags.trapLimitTooLow(), "moeflow.jvm.flags lacks " + JvmFlags.TRAP_LIMIT);
    }

    @Test
    void shouldRefuseToRunInAPlainJvmNamingTheMissingFlags() throws Exception {
        final String java = Paths.get(System.getProperty("java.home"), "bin", "java").toString();
        final Process process = new ProcessBuilder(java, "-cp", System.getProperty("java.class.path"), Main.class.getName(),
            "train", "--steps", "1").redirectErrorStream(true).start();
        final String output;
        try {
            assertTrue(process.waitFor(60, TimeUnit.SECONDS), "the plain JVM did not exit");
            output = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        } finally {
            process.destroyForcibly();
        }
        assertEquals(2, process.exitValue(), output);
        assertTrue(output.startsWith("moeflow: this JVM was started without " + JvmFlags.ADD_OPENS + " and " + JvmFlags.ADD_MODULES),
            output);
        assertFalse(output.contains("Exception"), output);
    }
}
