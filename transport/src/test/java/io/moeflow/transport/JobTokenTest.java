package io.moeflow.transport;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class JobTokenTest {
    @TempDir
    Path dir;

    @Test
    void shouldWriteAnOwnerOnlyFileAndReadTheSameToken() throws IOException {
        final JobToken token = JobToken.generate();
        final Path file = dir.resolve("job.token");
        token.writeTo(file);
        assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(file)));
        final JobToken read = JobToken.readFrom(file);
        final byte[] message = "hello".getBytes(StandardCharsets.US_ASCII);
        assertArrayEquals(token.mac(message), read.mac(message));
        assertFalse(JobToken.macEquals(token.mac(message), JobToken.generate().mac(message)), "another token, another MAC");
        assertEquals("JobToken[redacted]", token.toString());
        assertThrows(IOException.class, () -> token.writeTo(file), "never overwrites a token");
    }

    @Test
    void shouldRefuseATokenFileOthersCanRead() throws IOException {
        final Path file = dir.resolve("open.token");
        JobToken.generate().writeTo(file);
        Files.setPosixFilePermissions(file, PosixFilePermissions.fromString("rw-r--r--"));
        final IOException e = assertThrows(IOException.class, () -> JobToken.readFrom(file));
        assertTrue(e.getMessage().contains("is readable by others (rw-r--r--); run chmod 600"), e.getMessage());
    }

    @Test
    void shouldRefuseMissingOrGarbledTokenFiles() throws IOException {
        assertTrue(assertThrows(IOException.class, () -> JobToken.readFrom(dir.resolve("none"))).getMessage()
            .contains("does not exist"));
        final Path shortFile = dir.resolve("short.token");
        Files.writeString(shortFile, "abcd");
        Files.setPosixFilePermissions(shortFile, PosixFilePermissions.fromString("rw-------"));
        assertTrue(assertThrows(IOException.class, () -> JobToken.readFrom(shortFile)).getMessage().contains("expected 64 hex digits"));
        final Path notHex = dir.resolve("nothex.token");
        Files.writeString(notHex, "z".repeat(64));
        Files.setPosixFilePermissions(notHex, PosixFilePermissions.fromString("rw-------"));
        assertTrue(assertThrows(IOException.class, () -> JobToken.readFrom(notHex)).getMessage().contains("is not hex"));
    }
}
