package io.moeflow.transport.aeron;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import io.moeflow.transport.IdleMode;

/** The driver's directory is private before the driver starts, and a job directory that cannot be made so is refused. */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class JobMediaDriverTest {
    @Test
    void shouldMakeTheJobDirectoryPrivateBeforeLaunchingAndTheDriverDirectoryAfter() throws Exception {
        try (AeronTestJob job = new AeronTestJob()) {
            Files.setPosixFilePermissions(job.root, PosixFilePermissions.fromString("rwxr-xr-x"));
            JobMediaDriver.makeParentPrivate(Path.of(job.ipcDirectory()));
            assertEquals("rwx------", PosixFilePermissions.toString(Files.getPosixFilePermissions(job.root)),
                "tightened before any driver exists");
            Files.setPosixFilePermissions(job.root, PosixFilePermissions.fromString("rwxrwxrwx"));
            try (JobMediaDriver driver = JobMediaDriver.launch(job.ipcDirectory(), IdleMode.BACKOFF)) {
                assertEquals("rwx------", PosixFilePermissions.toString(Files.getPosixFilePermissions(job.root)));
                assertEquals("rwx------", PosixFilePermissions.toString(
                    Files.getPosixFilePermissions(Path.of(driver.aeronDirectory()))));
            }
        }
    }

    @Test
    void shouldCreateAMissingJobDirectoryPrivate() throws Exception {
        try (AeronTestJob job = new AeronTestJob()) {
            final Path fresh = job.root.resolve("fresh");
            JobMediaDriver.makeParentPrivate(fresh.resolve("aeron"));
            assertEquals("rwx------", PosixFilePermissions.toString(Files.getPosixFilePermissions(fresh)));
        }
    }

    @Test
    void shouldRefuseAJobDirectoryThatIsALinkOrBelongsToAnotherUser() throws Exception {
        try (AeronTestJob job = new AeronTestJob()) {
            final Path real = Files.createDirectory(job.root.resolve("real"));
            final Path link = Files.createSymbolicLink(job.root.resolve("link"), real);
            final IllegalStateException viaLink = assertThrows(IllegalStateException.class,
                () -> JobMediaDriver.launch(link.resolve("aeron").toString(), IdleMode.BACKOFF));
            assertTrue(viaLink.getMessage().contains("is not a directory (or is a symbolic link)"), viaLink.getMessage());
            assertFalse(Files.exists(real.resolve("aeron")), "no driver started behind the link");

            final Path theirs;
            if ("root".equals(System.getProperty("user.name"))) {
                theirs = Files.createDirectory(job.root.resolve("theirs"));
                Files.setOwner(theirs, theirs.getFileSystem().getUserPrincipalLookupService().lookupPrincipalByName("nobody"));
            } else {
                theirs = Path.of("/dev/shm"); // owned by root
            }
            final IllegalStateException other = assertThrows(IllegalStateException.class,
                () -> JobMediaDriver.launch(theirs.resolve("moeflow-not-mine").toString(), IdleMode.BACKOFF));
            assertTrue(other.getMessage().contains("is owned by "), other.getMessage());
            assertTrue(other.getMessage().contains("give aeronDirectory inside a job directory of your own"), other.getMessage());
        }
    }
}
