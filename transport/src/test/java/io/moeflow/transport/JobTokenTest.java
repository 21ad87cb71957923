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
        assertTrue(e.getMessage().contains("is readable or writable by others (rw-r--r--); run chmod 600"), e.getMessage());
    }

    @Test
    void shouldRefuseATokenFileOthersCanWrite() throws IOException {
        final Path file = dir.resolve("writable.token");
        JobToken.generate().writeTo(file);
        for (final String mode : new String[] {"rw--w----", "rw-----w-"}) {
            Files.setPosixFilePermissions(file, PosixFilePermissions.fromString(mode));
            final IOException e = assertThrows(IOException.class, () -> JobToken.readFrom(file), mode);
            assertTrue(e.getMessage().contains("is readable or writable by others (" + mode + ")"), e.getMessage());
        }
    }

    @Test
    void shouldRefuseASymbolicLinkToAValidTokenFile() throws IOException {
        final Path real = dir.resolve("real.token");
        JobToken.generate().writeTo(real);
        JobToken.readFrom(real); // the target itself is fine
        final Path link = Files.createSymbolicLink(dir.resolve("link.token"), real);
        final IOException e = assertThrows(IOException.class, () -> JobToken.readFrom(link));
        assertTrue(e.getMessage().contains("is a symbolic link"), e.getMessage());
    }

    @Test
    void shouldRefuseATokenFileOwnedByAnotherUser() throws IOException {
        final String me = System.getProperty("user.name");
        final Path theirs;
        final String other;
        if ("root".equals(me)) {
            theirs = dir.resolve("theirs.token");
            JobToken.generate().writeTo(theirs);
            other = "nobody";
            Files.setOwner(theirs, theirs.getFileSystem().getUserPrincipalLookupService().lookupPrincipalByName(other));
        } else {
            theirs = Path.of("/etc/hostname"); // owned by root; the owner is checked first
            other = "root";
        }
        final IOException e = assertThrows(IOException.class, () -> JobToken.readFrom(theirs));
        assertTrue(e.getMessage().contains("is owned by " + other + ", not by " + me), e.getMessage());
    }

    @Test
    void shouldCreateTheFileExclusivelyAndNeverFollowALink() throws IOException {
        final Path elsewhere = dir.resolve("elsewhere");
        final Path link = Files.createSymbolicLink(dir.resolve("planted.token"), elsewhere);
        final IOException e = assertThrows(IOException.class, () -> JobToken.generate().writeTo(link));
        assertTrue(e.getMessage().contains("is already there and is never overwritten"), e.getMessage());
        assertFalse(Files.exists(elsewhere), "the link's target was not created");
        assertTrue(Files.isSymbolicLink(link), "the planted link is left alone");
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
