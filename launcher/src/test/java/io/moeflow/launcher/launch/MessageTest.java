package io.moeflow.launcher.launch;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;

import org.junit.jupiter.api.Test;

class MessageTest {
    @Test
    void shouldRoundTripValuesWithSpacesEqualsSignsAndTheArgumentSeparator() {
        final String args = String.join(JobMaster.ARG_SEPARATOR, List.of("train", "--run-name", "a b=c", "ünï"));
        final Message m = Message.of("START", "gen", 3, "args", args, "reason", "exit code 2: moeflow train: --steps=0 bad");
        final String line = m.toLine();
        assertFalse(line.contains("\n"), line);
        assertEquals(4, line.split(" ").length, "one word per field: " + line);
        final Message back = Message.parse(line);
        assertEquals(m, back);
        assertEquals(3, back.getInt("gen"));
        assertEquals(List.of("train", "--run-name", "a b=c", "ünï"), JobMaster.splitArgs(back.get("args")));
    }

    @Test
    void shouldNameTheMissingFieldAndTheBadLine() {
        final Message m = Message.parse("EXIT gen=0");
        final IllegalArgumentException missing = assertThrows(IllegalArgumentException.class, () -> m.getInt("rank"));
        assertTrue(missing.getMessage().contains("EXIT: field 'rank' is missing"), missing.getMessage());
        final IllegalArgumentException bad = assertThrows(IllegalArgumentException.class, () -> Message.parse("EXIT gen"));
        assertTrue(bad.getMessage().contains("field 'gen' is not key=value"), bad.getMessage());
        assertThrows(IllegalArgumentException.class, () -> Message.parse("exit gen=1"));
    }

    @Test
    void shouldNeverShowTheJoinKeyOrTheToken() {
        final String text = Message.of("READY", "token", "deadbeef", "key", "cafe", "world", 2).toString();
        assertFalse(text.contains("deadbeef") || text.contains("cafe"), text);
        assertTrue(text.contains("world=2"), text);
    }
}
