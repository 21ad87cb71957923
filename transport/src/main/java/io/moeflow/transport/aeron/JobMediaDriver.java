package io.moeflow.transport.aeron;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

import io.aeron.driver.MediaDriver;
import io.aeron.driver.ThreadingMode;
import org.agrona.concurrent.IdleStrategy;

import io.moeflow.transport.IdleMode;

/**
 * An embedded Aeron media driver for one job: one thread ({@link ThreadingMode#SHARED}, because
 * MoEFlow hosts are often short of cores), its directory private to the user and deleted on close.
 */
public final class JobMediaDriver implements AutoCloseable {
    /** 5 s: a killed peer's streams close this long after its last heartbeat (Aeron's default is 10 s). */
    static final long CLIENT_LIVENESS_TIMEOUT_NS = TimeUnit.SECONDS.toNanos(5);
    /** 2 MiB socket buffers and receiver window: enough for loopback and LAN rates, under the 4 MiB OS caps seen here. */
    static final int SOCKET_BUFFER_BYTES = 2 << 20;

    private final MediaDriver driver;

    private JobMediaDriver(final MediaDriver driver) {
        this.driver = driver;
    }

    /** Launches a driver in {@code aeronDirectory} (which must not be in use by a live driver). */
    public static JobMediaDriver launch(final String aeronDirectory, final IdleMode idleMode) {
        return launch(aeronDirectory, idleMode, null);
    }

    /** Launches a driver whose UDP receivers let only authenticated frames into the logs ({@code filter} may be null). */
    static JobMediaDriver launch(final String aeronDirectory, final IdleMode idleMode, final FrameAuthenticationFilter filter) {
        // SPIN: spin, then yield the core, never park (as the engine's SPIN mode); BACKOFF parks up to 0.5 ms
        final IdleStrategy idle = idleMode.newIdleStrategy(TimeUnit.MICROSECONDS.toNanos(500));
        final AtomicLong errors = new AtomicLong();
        final MediaDriver.Context context = new MediaDriver.Context()
            .aeronDirectoryName(aeronDirectory)
            .dirDeleteOnStart(true)
            .dirDeleteOnShutdown(true)
            .threadingMode(ThreadingMode.SHARED)
            .sharedIdleStrategy(idle)
            .termBufferSparseFile(true)
            .socketSndbufLength(SOCKET_BUFFER_BYTES)
            .socketRcvbufLength(SOCKET_BUFFER_BYTES)
            .initialWindowLength(SOCKET_BUFFER_BYTES)
            .clientLivenessTimeoutNs(CLIENT_LIVENESS_TIMEOUT_NS)
            .warnIfDirectoryExists(false)
            .errorHandler(e -> {
                if (errors.incrementAndGet() <= 3) {
                    System.err.println("moeflow transport: media driver in " + aeronDirectory + ": " + e);
                }
            });
        if (filter != null) {
            context.receiveChannelEndpointSupplier(filter.endpointSupplier());
        }
        final MediaDriver driver = MediaDriver.launchEmbedded(context);
        try {
            Files.setPosixFilePermissions(Paths.get(driver.aeronDirectoryName()), PosixFilePermissions.fromString("rwx------"));
        } catch (final UnsupportedOperationException | IOException e) {
            // not a POSIX file system: the directory keeps the umask's permissions
        }
        return new JobMediaDriver(driver);
    }

    /** The directory clients connect to. */
    public String aeronDirectory() {
        return driver.aeronDirectoryName();
    }

    /** Stops the driver, which deletes its directory ({@code dirDeleteOnShutdown}). */
    @Override
    public void close() {
        driver.close();
    }
}
