package io.moeflow.transport.aeron;

import java.io.IOException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.nio.file.attribute.UserPrincipal;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

import io.aeron.driver.MediaDriver;
import io.aeron.driver.ThreadingMode;
import org.agrona.concurrent.IdleStrategy;

import io.moeflow.transport.IdleMode;

/**
 * An embedded Aeron media driver for one job: one thread ({@link ThreadingMode#SHARED}, because
 * MoEFlow hosts are often short of cores), its directory private to the user and deleted on close.
 *
 * <p>Aeron deletes and re-creates its directory when it starts, with the process umask's mode, so
 * the directory is put inside a job directory that is made private (0700, owned by this user, not a
 * link) before the driver starts: no other user can reach the driver's files at any moment. The
 * driver directory itself is then set to 0700 too.
 */
public final class JobMediaDriver implements AutoCloseable {
    /**
     * 2 s: by default every rank learns within this bound that a rank of the job died (see
     * {@link #launch(String, IdleMode, long)}).
     */
    public static final long DEFAULT_FAILURE_BOUND_NS = TimeUnit.SECONDS.toNanos(2);
    /** 2 MiB socket buffers and receiver window: enough for loopback and LAN rates, under the 4 MiB OS caps seen here. */
    static final int SOCKET_BUFFER_BYTES = 2 << 20;

    private static final Set<PosixFilePermission> OWNER_ONLY = PosixFilePermissions.fromString("rwx------");

    private final MediaDriver driver;

    private JobMediaDriver(final MediaDriver driver) {
        this.driver = driver;
    }

    /** Launches a driver in {@code aeronDirectory} (which must not be in use by a live driver), failure bound 2 s. */
    public static JobMediaDriver launch(final String aeronDirectory, final IdleMode idleMode) {
        return launch(aeronDirectory, idleMode, DEFAULT_FAILURE_BOUND_NS, null, true);
    }

    /**
     * Launches a driver whose liveness timeouts are tuned to {@code failureBoundNs}: a client (worker)
     * that stops heart-beating, a UDP image that stops receiving and a UDP publication that stops
     * getting status messages are declared gone after three quarters of the bound (checked every
     * twentieth), so its peers see its streams closed and tell the rest of the job by ABORT frames
     * within the bound. A shorter bound makes a stalled but healthy process (a long GC
     * pause, a starved core) more likely to be declared dead.
     */
    public static JobMediaDriver launch(final String aeronDirectory, final IdleMode idleMode, final long failureBoundNs) {
        return launch(aeronDirectory, idleMode, failureBoundNs, null, true);
    }

    /**
     * The liveness timeout of clients, images and publications for a failure bound: three quarters
     * of it (the rest covers the driver's check interval and the ABORT). Not less: a client whose
     * own thread stalls longer than this (its "service interval", e.g. a starved core while JVMs
     * start) is closed by Aeron, and a measured 1.45 s stall on a loaded 2-core host ended a worker
     * when this was half the default bound.
     */
    static long livenessTimeoutNs(final long failureBoundNs) {
        return failureBoundNs / 4 * 3;
    }

    /**
     * An embedded driver that serves only its own process (UDP) needs no short client liveness: a
     * dead peer shows as its image and publication going quiet. It keeps Aeron's 10 s default, so a
     * stalled worker never closes its own client.
     */
    static final long OWN_CLIENT_LIVENESS_TIMEOUT_NS = TimeUnit.SECONDS.toNanos(10);

    /** How often drivers check liveness, and clients heart-beat, for a failure bound: a twentieth of it. */
    static long livenessIntervalNs(final long failureBoundNs) {
        return failureBoundNs / 20;
    }

    /**
     * @throws IllegalArgumentException unless the bound is in [200 ms, 10 min]
     */
    public static void checkFailureBound(final long failureBoundNs) {
        if (failureBoundNs < TimeUnit.MILLISECONDS.toNanos(200) || failureBoundNs > TimeUnit.MINUTES.toNanos(10)) {
            throw new IllegalArgumentException("failureBoundNs=" + failureBoundNs + ": must be in [200 ms, 10 min]");
        }
    }

    /** Launches a driver whose UDP receivers let only authenticated frames into the logs ({@code filter} may be null). */
    static JobMediaDriver launch(final String aeronDirectory, final IdleMode idleMode, final long failureBoundNs,
                                 final FrameAuthenticationFilter filter, final boolean sharedByProcesses) {
        checkFailureBound(failureBoundNs);
        // SPIN: spin, then yield the core, never park (as the engine's SPIN mode); BACKOFF parks up to 0.5 ms
        makeParentPrivate(Paths.get(aeronDirectory).toAbsolutePath());
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
            .clientLivenessTimeoutNs(sharedByProcesses ? livenessTimeoutNs(failureBoundNs) : OWN_CLIENT_LIVENESS_TIMEOUT_NS)
            .imageLivenessTimeoutNs(livenessTimeoutNs(failureBoundNs))
            .publicationConnectionTimeoutNs(livenessTimeoutNs(failureBoundNs))
            .timerIntervalNs(livenessIntervalNs(failureBoundNs))
            .publicationUnblockTimeoutNs(Math.max(TimeUnit.SECONDS.toNanos(15), 3 * OWN_CLIENT_LIVENESS_TIMEOUT_NS))
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
            Files.setPosixFilePermissions(Paths.get(driver.aeronDirectoryName()), OWNER_ONLY);
        } catch (final UnsupportedOperationException | IOException e) {
            // not a POSIX file system: the directory keeps the umask's permissions
        }
        return new JobMediaDriver(driver);
    }

    /**
     * Creates the parent of {@code aeronDirectory} with mode 0700, or checks an existing one (a
     * directory owned by this user, not a symbolic link) and sets it to 0700.
     *
     * @throws IllegalStateException naming the directory and what to do, if it cannot be made private
     */
    static void makeParentPrivate(final Path aeronDirectory) {
        final Path parent = aeronDirectory.getParent();
        if (parent == null) {
            throw new IllegalStateException("aeronDirectory=" + aeronDirectory + ": put it inside a job directory, e.g."
                + " /dev/shm/moeflow-<job>/aeron");
        }
        try {
            if (!Files.exists(parent, LinkOption.NOFOLLOW_LINKS)) {
                Files.createDirectories(parent.getParent());
                try {
                    Files.createDirectory(parent, PosixFilePermissions.asFileAttribute(OWNER_ONLY));
                } catch (final FileAlreadyExistsException raced) {
                    // created meanwhile: checked below like any existing directory
                }
            }
            if (Files.isSymbolicLink(parent) || !Files.isDirectory(parent, LinkOption.NOFOLLOW_LINKS)) {
                throw new IllegalStateException("the job directory " + parent + " of the media driver is not a directory"
                    + " (or is a symbolic link); give aeronDirectory inside a job directory of your own");
            }
            final UserPrincipal owner = Files.getOwner(parent, LinkOption.NOFOLLOW_LINKS);
            final UserPrincipal me = parent.getFileSystem().getUserPrincipalLookupService()
                .lookupPrincipalByName(System.getProperty("user.name"));
            if (!owner.equals(me)) {
                throw new IllegalStateException("the job directory " + parent + " of the media driver is owned by "
                    + owner.getName() + ", not by " + me.getName() + "; give aeronDirectory inside a job directory of your"
                    + " own, e.g. /dev/shm/moeflow-<job>/aeron");
            }
            Files.setPosixFilePermissions(parent, OWNER_ONLY);
        } catch (final UnsupportedOperationException e) {
            // not a POSIX file system: nothing to tighten
        } catch (final IOException e) {
            throw new IllegalStateException("cannot make the job directory " + parent + " private (mode 0700): " + e, e);
        }
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
