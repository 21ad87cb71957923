package io.moeflow.transport.aeron;

import java.util.List;
import java.util.concurrent.TimeUnit;

import io.moeflow.transport.IdleMode;
import io.moeflow.transport.JobToken;

/**
 * Where and how one rank connects over Aeron. Start from {@link #ipc} or {@link #udp}, which fill in
 * the defaults, and adjust with the {@code with*} methods.
 *
 * @param rank             this rank, in [0, size)
 * @param size             ranks in the job
 * @param media            IPC (one host, one shared media driver) or UDP (one driver per process)
 * @param aeronDirectory   the media driver's directory, under /dev/shm; unique per job (IPC: shared by
 *                         the ranks of the host; UDP: this rank's own)
 * @param launchDriver     launch an embedded driver in {@code aeronDirectory} (UDP: each rank; IPC:
 *                         exactly one process of the host, often the launcher)
 * @param endpoints        UDP only: {@code host:port} where each rank receives, by rank (from the
 *                         rendezvous); empty for IPC
 * @param jobId            names the job; a peer of another job is rejected at the handshake
 * @param token            the job's secret
 * @param termLengthBytes  term length of each publication: a power of two in [64 KiB, 1 GiB]; a sender
 *                         may run half a term ahead of its receiver
 * @param mtuBytes         largest frame on the wire, header included: a multiple of 32 in [1024, 65504]
 * @param streamIdBase     stream ids are {@code base + from * size + to}
 * @param connectTimeoutNs how long to wait for the driver and for every peer's authenticated connection
 * @param closeTimeoutNs   how long {@code close()} waits for live peers to say they are done
 * @param driverIdleMode   idle strategy of an embedded driver's thread
 * @param frameAuthentication every data frame carries a tag under a per-session key and a sequence
 *                         number (see {@link io.moeflow.transport.FrameAuthenticator}); on by default
 *                         for UDP, where the wire is shared, off for IPC, whose log buffers only this
 *                         user's processes can open (the 0700 driver directory): anyone who could
 *                         forge an IPC frame could also read the token file
 * @param failureBoundNs   when a rank dies, every other rank's current and next operation fails within
 *                         about this long (2 s by default): the embedded driver's (UDP) image and
 *                         publication liveness timeouts are three quarters of it and this client
 *                         heart-beats every twentieth of it.
 *                         Over IPC the shared driver's bound counts ({@link JobMediaDriver#launch(String,
 *                         io.moeflow.transport.IdleMode, long)}); give both the same value
 */
public record AeronTransportConfig(int rank, int size, AeronMedia media, String aeronDirectory, boolean launchDriver,
                                   List<String> endpoints, String jobId, JobToken token, int termLengthBytes,
                                   int mtuBytes, int streamIdBase, long connectTimeoutNs, long closeTimeoutNs,
                                   IdleMode driverIdleMode, boolean frameAuthentication, long failureBoundNs) {

    /**
     * 8 MiB terms: a 4 MiB window in flight per stream, several milliseconds of transfer even at
     * memory speed, while 3 terms per ordered pair of ranks keep /dev/shm use modest (sparse files).
     */
    public static final int DEFAULT_TERM_LENGTH_BYTES = 8 << 20;
    /** IPC: the largest frame Aeron allows (64 KiB - 32), so large buffers move in few frames. */
    public static final int DEFAULT_IPC_MTU_BYTES = 65504;
    /** UDP: Aeron's default, which fits a standard 1500-byte Ethernet frame without IP fragmentation. */
    public static final int DEFAULT_UDP_MTU_BYTES = 1408;
    /** 30 s: worker JVMs of one job start seconds apart on a busy host. */
    public static final long DEFAULT_CONNECT_TIMEOUT_NS = TimeUnit.SECONDS.toNanos(30);
    /** 10 s: ranks of a job finish close together; a dead peer is noticed sooner by its closed stream. */
    public static final long DEFAULT_CLOSE_TIMEOUT_NS = TimeUnit.SECONDS.toNanos(10);
    /** Arbitrary, fixed so that tools can find MoEFlow's streams. */
    public static final int DEFAULT_STREAM_ID_BASE = 0x4D460000;

    public AeronTransportConfig {
        if (size < 1 || rank < 0 || rank >= size) {
            throw new IllegalArgumentException("rank=" + rank + " size=" + size + ": need size >= 1 and 0 <= rank < size");
        }
        if (media == null) {
            throw new IllegalArgumentException("media=null: give IPC or UDP");
        }
        if (aeronDirectory == null || aeronDirectory.isBlank()) {
            throw new IllegalArgumentException("aeronDirectory=" + aeronDirectory + ": give a directory inside a job directory, e.g. /dev/shm/moeflow-<job>/aeron");
        }
        endpoints = endpoints == null ? List.of() : List.copyOf(endpoints);
        if (media == AeronMedia.UDP) {
            if (endpoints.size() != size) {
                throw new IllegalArgumentException("endpoints=" + endpoints + ": UDP needs one host:port per rank (" + size + ")");
            }
            for (final String endpoint : endpoints) {
                final int colon = endpoint.lastIndexOf(':');
                if (colon <= 0 || colon == endpoint.length() - 1 || !endpoint.substring(colon + 1).chars().allMatch(Character::isDigit)) {
                    throw new IllegalArgumentException("endpoints: '" + endpoint + "' is not host:port");
                }
            }
        }
        if (jobId == null || jobId.isBlank()) {
            throw new IllegalArgumentException("jobId=" + jobId + ": give the job's id");
        }
        if (token == null) {
            throw new IllegalArgumentException("token=null: every job needs a token (JobToken.readFrom(file))");
        }
        if (Integer.bitCount(termLengthBytes) != 1 || termLengthBytes < 64 * 1024 || termLengthBytes > 1 << 30) {
            throw new IllegalArgumentException("termLengthBytes=" + termLengthBytes + ": must be a power of two in [64 KiB, 1 GiB]");
        }
        if (mtuBytes % 32 != 0 || mtuBytes < 1024 || mtuBytes > 65504) {
            throw new IllegalArgumentException("mtuBytes=" + mtuBytes + ": must be a multiple of 32 in [1024, 65504]");
        }
        if (mtuBytes > termLengthBytes / 8) {
            // Aeron's largest message is an eighth of a term, and a frame is one message
            throw new IllegalArgumentException("mtuBytes=" + mtuBytes + " termLengthBytes=" + termLengthBytes
                + ": the MTU may be at most an eighth of the term length; raise the term length or lower the MTU");
        }
        if (connectTimeoutNs <= 0 || closeTimeoutNs < 0) {
            throw new IllegalArgumentException("connectTimeoutNs=" + connectTimeoutNs + " closeTimeoutNs=" + closeTimeoutNs
                + ": must be > 0 and >= 0");
        }
        JobMediaDriver.checkFailureBound(failureBoundNs);
        if (driverIdleMode == null) {
            throw new IllegalArgumentException("driverIdleMode=null: give BACKOFF or SPIN");
        }
    }

    /** IPC on one host through the driver in {@code aeronDirectory}, which another process launched. */
    public static AeronTransportConfig ipc(final int rank, final int size, final String aeronDirectory, final String jobId,
                                           final JobToken token) {
        return new AeronTransportConfig(rank, size, AeronMedia.IPC, aeronDirectory, false, List.of(), jobId, token,
            DEFAULT_TERM_LENGTH_BYTES, DEFAULT_IPC_MTU_BYTES, DEFAULT_STREAM_ID_BASE, DEFAULT_CONNECT_TIMEOUT_NS,
            DEFAULT_CLOSE_TIMEOUT_NS, IdleMode.BACKOFF, false,
            JobMediaDriver.DEFAULT_FAILURE_BOUND_NS);
    }

    /** UDP with this rank's own embedded driver in {@code aeronDirectory}. */
    public static AeronTransportConfig udp(final int rank, final int size, final String aeronDirectory,
                                           final List<String> endpoints, final String jobId, final JobToken token) {
        return new AeronTransportConfig(rank, size, AeronMedia.UDP, aeronDirectory, true, endpoints, jobId, token,
            DEFAULT_TERM_LENGTH_BYTES, DEFAULT_UDP_MTU_BYTES, DEFAULT_STREAM_ID_BASE, DEFAULT_CONNECT_TIMEOUT_NS,
            DEFAULT_CLOSE_TIMEOUT_NS, IdleMode.BACKOFF, true,
            JobMediaDriver.DEFAULT_FAILURE_BOUND_NS);
    }

    public AeronTransportConfig withLaunchDriver(final boolean launch) {
        return new AeronTransportConfig(rank, size, media, aeronDirectory, launch, endpoints, jobId, token, termLengthBytes,
            mtuBytes, streamIdBase, connectTimeoutNs, closeTimeoutNs, driverIdleMode, frameAuthentication,
            failureBoundNs);
    }

    public AeronTransportConfig withTermAndMtu(final int termBytes, final int mtu) {
        return new AeronTransportConfig(rank, size, media, aeronDirectory, launchDriver, endpoints, jobId, token, termBytes,
            mtu, streamIdBase, connectTimeoutNs, closeTimeoutNs, driverIdleMode, frameAuthentication,
            failureBoundNs);
    }

    public AeronTransportConfig withTimeouts(final long connectNs, final long closeNs) {
        return new AeronTransportConfig(rank, size, media, aeronDirectory, launchDriver, endpoints, jobId, token,
            termLengthBytes, mtuBytes, streamIdBase, connectNs, closeNs, driverIdleMode, frameAuthentication,
            failureBoundNs);
    }

    public AeronTransportConfig withDriverIdleMode(final IdleMode mode) {
        return new AeronTransportConfig(rank, size, media, aeronDirectory, launchDriver, endpoints, jobId, token,
            termLengthBytes, mtuBytes, streamIdBase, connectTimeoutNs, closeTimeoutNs, mode, frameAuthentication, failureBoundNs);
    }

    /** A copy with frame authentication on or off (measure its cost: {@code moeflow bench transport}). */
    public AeronTransportConfig withFrameAuthentication(final boolean on) {
        return new AeronTransportConfig(rank, size, media, aeronDirectory, launchDriver, endpoints, jobId, token,
            termLengthBytes, mtuBytes, streamIdBase, connectTimeoutNs, closeTimeoutNs, driverIdleMode, on,
            failureBoundNs);
    }

    /** A copy with another failure bound (see the record's {@code failureBoundNs}). */
    public AeronTransportConfig withFailureBoundNs(final long boundNs) {
        return new AeronTransportConfig(rank, size, media, aeronDirectory, launchDriver, endpoints, jobId, token,
            termLengthBytes, mtuBytes, streamIdBase, connectTimeoutNs, closeTimeoutNs, driverIdleMode, frameAuthentication,
            boundNs);
    }

    @Override
    public String toString() {
        return "AeronTransportConfig[rank=" + rank + " size=" + size + " media=" + media + " aeronDirectory=" + aeronDirectory
            + " launchDriver=" + launchDriver + " endpoints=" + endpoints + " jobId=" + jobId + " termLengthBytes="
            + termLengthBytes + " mtuBytes=" + mtuBytes + " connectTimeoutNs=" + connectTimeoutNs + " closeTimeoutNs="
            + closeTimeoutNs + " driverIdleMode=" + driverIdleMode + " frameAuthentication=" + frameAuthentication
            + " failureBoundNs=" + failureBoundNs + "]";
    }
}
