package io.moeflow.transport.aeron;

import java.util.List;
import java.util.concurrent.TimeUnit;

import io.moeflow.transport.IdleMode;
import io.moeflow.transport.JobToken;

/**
 * Where and how one rank connects over Aeron. Start from {@link #ipc}, {@link #udp} or {@link #hybrid},
 * which fill in the defaults, and adjust with the {@code with*} methods.
 *
 * @param rank             this rank, in [0, size)
 * @param size             ranks in the job
 * @param media            IPC (one host, one shared media driver), UDP (one driver per process) or
 *                         HYBRID (IPC to the ranks of this node, UDP to the others)
 * @param aeronDirectory   the media driver's directory, under /dev/shm; unique per job (IPC: shared by
 *                         the ranks of the host; UDP: this rank's own; HYBRID: the node's shared one,
 *                         for the peers of this node)
 * @param launchDriver     launch an embedded driver (IPC: in {@code aeronDirectory}, exactly one
 *                         process of the host, often the launcher; UDP: each rank, in
 *                         {@code aeronDirectory}; HYBRID: each rank that has peers on other nodes, in
 *                         {@code ownAeronDirectory}; the node's driver is always another process's)
 * @param endpoints        UDP and HYBRID: {@code host:port} where each rank receives UDP, by rank (from
 *                         the rendezvous); empty for IPC, and may be empty for HYBRID on one node
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
 *                         forge an IPC frame could also read the token file. HYBRID: on by default,
 *                         and applies to the peers on other nodes only; frames to peers of this node
 *                         are never tagged, as over IPC
 * @param failureBoundNs   when a rank dies, every other rank's current and next operation fails within
 *                         about this long (2 s by default): the embedded driver's (UDP) image and
 *                         publication liveness timeouts are three quarters of it and this client
 *                         heart-beats every twentieth of it.
 *                         Over IPC the shared driver's bound counts ({@link JobMediaDriver#launch(String,
 *                         io.moeflow.transport.IdleMode, long)}); give both the same value
 * @param ownAeronDirectory HYBRID only (else null): this rank's own driver's directory, for the UDP peers
 * @param nodeOfRank       HYBRID only (else empty): the node index of every rank; peers with this rank's
 *                         index are reached by IPC, the others by UDP
 * @param ipcMtuBytes      HYBRID only (else 0): the MTU of the streams to the peers of this node (IPC);
 *                         {@code mtuBytes} is then the UDP peers' MTU. Each peer's frames are as large as
 *                         its stream allows ({@link #mtuBytesOf}): a large buffer crosses the node's
 *                         shared memory in 64 KiB frames, not in UDP-sized ones
 */
public record AeronTransportConfig(int rank, int size, AeronMedia media, String aeronDirectory, boolean launchDriver,
                                   List<String> endpoints, String jobId, JobToken token, int termLengthBytes,
                                   int mtuBytes, int streamIdBase, long connectTimeoutNs, long closeTimeoutNs,
                                   IdleMode driverIdleMode, boolean frameAuthentication, long failureBoundNs,
                                   String ownAeronDirectory, List<Integer> nodeOfRank, int ipcMtuBytes) {

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
            throw new IllegalArgumentException("media=null: give IPC, UDP or HYBRID");
        }
        if (aeronDirectory == null || aeronDirectory.isBlank()) {
            throw new IllegalArgumentException("aeronDirectory=" + aeronDirectory + ": give a directory inside a job directory, e.g. /dev/shm/moeflow-<job>/aeron");
        }
        endpoints = endpoints == null ? List.of() : List.copyOf(endpoints);
        nodeOfRank = nodeOfRank == null ? List.of() : List.copyOf(nodeOfRank);
        final boolean crossNode = checkHybrid(media, rank, size, aeronDirectory, ownAeronDirectory, endpoints, nodeOfRank);
        if (media == AeronMedia.UDP || crossNode) {
            if (endpoints.size() != size) {
                throw new IllegalArgumentException("endpoints=" + endpoints + ": " + media + " needs one host:port per rank ("
                    + size + ")");
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
        checkMtu("mtuBytes", mtuBytes, termLengthBytes);
        if (media == AeronMedia.HYBRID) {
            checkMtu("ipcMtuBytes", ipcMtuBytes, termLengthBytes);
        } else if (ipcMtuBytes != 0) {
            throw new IllegalArgumentException("ipcMtuBytes=" + ipcMtuBytes + ": only HYBRID uses it; give 0 for " + media
                + " (its MTU is mtuBytes)");
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

    private static void checkMtu(final String name, final int mtu, final int termLengthBytes) {
        if (mtu % 32 != 0 || mtu < 1024 || mtu > 65504) {
            throw new IllegalArgumentException(name + "=" + mtu + ": must be a multiple of 32 in [1024, 65504]");
        }
        if (mtu > termLengthBytes / 8) {
            // Aeron's largest message is an eighth of a term, and a frame is one message
            throw new IllegalArgumentException(name + "=" + mtu + " termLengthBytes=" + termLengthBytes
                + ": the MTU may be at most an eighth of the term length; raise the term length or lower the MTU");
        }
    }

    /**
     * Checks the HYBRID-only settings (or their absence for IPC and UDP).
     *
     * @return whether this rank has peers on other nodes (then every rank needs an endpoint)
     */
    private static boolean checkHybrid(final AeronMedia media, final int rank, final int size, final String aeronDirectory,
                                       final String ownAeronDirectory, final List<String> endpoints, final List<Integer> nodeOfRank) {
        if (media != AeronMedia.HYBRID) {
            if (ownAeronDirectory != null || !nodeOfRank.isEmpty()) {
                throw new IllegalArgumentException("ownAeronDirectory=" + ownAeronDirectory + " nodeOfRank=" + nodeOfRank + ": only"
                    + " HYBRID uses them; leave them null and empty for " + media);
            }
            return false;
        }
        if (nodeOfRank.size() != size) {
            throw new IllegalArgumentException("nodeOfRank=" + nodeOfRank + ": HYBRID needs the node index of every rank (" + size
                + " entries, from the rendezvous)");
        }
        for (int r = 0; r < size; r++) {
            if (nodeOfRank.get(r) == null || nodeOfRank.get(r) < 0) {
                throw new IllegalArgumentException("nodeOfRank=" + nodeOfRank + ": rank " + r + " has no node index >= 0");
            }
        }
        final boolean crossNode = nodeOfRank.stream().anyMatch(node -> !node.equals(nodeOfRank.get(rank)));
        if (crossNode && (ownAeronDirectory == null || ownAeronDirectory.isBlank())) {
            throw new IllegalArgumentException("ownAeronDirectory=" + ownAeronDirectory + ": rank " + rank + " has peers on"
                + " other nodes and needs its own driver's directory for UDP, e.g. /dev/shm/moeflow-<job>/aeron-rank-" + rank);
        }
        if (crossNode && ownAeronDirectory.equals(aeronDirectory)) {
            throw new IllegalArgumentException("ownAeronDirectory=" + ownAeronDirectory + ": must differ from the node's shared"
                + " driver directory aeronDirectory");
        }
        if (!crossNode && !endpoints.isEmpty() && endpoints.size() != size) {
            throw new IllegalArgumentException("endpoints=" + endpoints + ": give one host:port per rank (" + size + ") or none");
        }
        return crossNode;
    }

    /** True if frames to {@code peer} go through the node's (IPC) driver, false if over UDP. */
    public boolean isIpcPeer(final int peer) {
        return switch (media) {
            case IPC -> true;
            case UDP -> false;
            case HYBRID -> nodeOfRank.get(peer).equals(nodeOfRank.get(rank));
        };
    }

    /** The MTU of the streams to and from {@code peer}: HYBRID's {@code ipcMtuBytes} for a peer of this node, else {@code mtuBytes}. */
    public int mtuBytesOf(final int peer) {
        return media == AeronMedia.HYBRID && isIpcPeer(peer) ? ipcMtuBytes : mtuBytes;
    }

    /** True if frames to and from {@code peer} carry authentication tags (HYBRID: UDP peers only). */
    public boolean authenticatesFramesOf(final int peer) {
        return frameAuthentication && (media != AeronMedia.HYBRID || !isIpcPeer(peer));
    }

    /**
     * The directory of the driver shared by this node's ranks that this rank connects to, or null if
     * it needs none (UDP, or HYBRID with every peer on another node).
     */
    public String ipcDirectory() {
        if (media == AeronMedia.HYBRID) {
            for (int peer = 0; peer < size; peer++) {
                if (peer != rank && isIpcPeer(peer)) {
                    return aeronDirectory;
                }
            }
            return udpDirectory() == null ? aeronDirectory : null; // a job of one rank: as IPC
        }
        return media == AeronMedia.IPC ? aeronDirectory : null;
    }

    /**
     * The directory of this rank's own driver, for UDP peers, or null if it has none (IPC, or HYBRID
     * with every peer on this node).
     */
    public String udpDirectory() {
        if (media == AeronMedia.HYBRID) {
            for (int peer = 0; peer < size; peer++) {
                if (!isIpcPeer(peer)) {
                    return ownAeronDirectory;
                }
            }
            return null;
        }
        return media == AeronMedia.UDP ? aeronDirectory : null;
    }

    /** IPC on one host through the driver in {@code aeronDirectory}, which another process launched. */
    public static AeronTransportConfig ipc(final int rank, final int size, final String aeronDirectory, final String jobId,
                                           final JobToken token) {
        return new AeronTransportConfig(rank, size, AeronMedia.IPC, aeronDirectory, false, List.of(), jobId, token,
            DEFAULT_TERM_LENGTH_BYTES, DEFAULT_IPC_MTU_BYTES, DEFAULT_STREAM_ID_BASE, DEFAULT_CONNECT_TIMEOUT_NS,
            DEFAULT_CLOSE_TIMEOUT_NS, IdleMode.BACKOFF, false,
            JobMediaDriver.DEFAULT_FAILURE_BOUND_NS, null, List.of(), 0);
    }

    /** UDP with this rank's own embedded driver in {@code aeronDirectory}. */
    public static AeronTransportConfig udp(final int rank, final int size, final String aeronDirectory,
                                           final List<String> endpoints, final String jobId, final JobToken token) {
        return new AeronTransportConfig(rank, size, AeronMedia.UDP, aeronDirectory, true, endpoints, jobId, token,
            DEFAULT_TERM_LENGTH_BYTES, DEFAULT_UDP_MTU_BYTES, DEFAULT_STREAM_ID_BASE, DEFAULT_CONNECT_TIMEOUT_NS,
            DEFAULT_CLOSE_TIMEOUT_NS, IdleMode.BACKOFF, true,
            JobMediaDriver.DEFAULT_FAILURE_BOUND_NS, null, List.of(), 0);
    }

    /**
     * HYBRID: the peers whose {@code nodeOfRank} equals this rank's go through the node's shared
     * driver in {@code nodeAeronDirectory} (launched by the node agent, another process), the others
     * over UDP to {@code endpoints.get(peer)} through this rank's own embedded driver in
     * {@code ownAeronDirectory}, with authenticated frames. Each kind of peer has its own MTU: IPC's
     * ({@link #DEFAULT_IPC_MTU_BYTES}) within the node, UDP's ({@link #DEFAULT_UDP_MTU_BYTES}) across.
     */
    public static AeronTransportConfig hybrid(final int rank, final int size, final String nodeAeronDirectory,
                                              final String ownAeronDirectory, final List<String> endpoints, final int[] nodeOfRank,
                                              final String jobId, final JobToken token) {
        return new AeronTransportConfig(rank, size, AeronMedia.HYBRID, nodeAeronDirectory, true, endpoints, jobId, token,
            DEFAULT_TERM_LENGTH_BYTES, DEFAULT_UDP_MTU_BYTES, DEFAULT_STREAM_ID_BASE, DEFAULT_CONNECT_TIMEOUT_NS,
            DEFAULT_CLOSE_TIMEOUT_NS, IdleMode.BACKOFF, true, JobMediaDriver.DEFAULT_FAILURE_BOUND_NS, ownAeronDirectory,
            nodeOfRank == null ? null : java.util.Arrays.stream(nodeOfRank).boxed().toList(), DEFAULT_IPC_MTU_BYTES);
    }

    public AeronTransportConfig withLaunchDriver(final boolean launch) {
        return new AeronTransportConfig(rank, size, media, aeronDirectory, launch, endpoints, jobId, token, termLengthBytes,
            mtuBytes, streamIdBase, connectTimeoutNs, closeTimeoutNs, driverIdleMode, frameAuthentication,
            failureBoundNs, ownAeronDirectory, nodeOfRank, ipcMtuBytes);
    }

    /** A copy with another term length and MTU (HYBRID: the UDP peers' MTU; the IPC one shrinks to fit the term). */
    public AeronTransportConfig withTermAndMtu(final int termBytes, final int mtu) {
        return new AeronTransportConfig(rank, size, media, aeronDirectory, launchDriver, endpoints, jobId, token, termBytes,
            mtu, streamIdBase, connectTimeoutNs, closeTimeoutNs, driverIdleMode, frameAuthentication,
            failureBoundNs, ownAeronDirectory, nodeOfRank, media == AeronMedia.HYBRID ? Math.min(ipcMtuBytes, termBytes / 8) : 0);
    }

    /** HYBRID: a copy with another MTU for the peers of this node (IPC). */
    public AeronTransportConfig withIpcMtu(final int mtu) {
        return new AeronTransportConfig(rank, size, media, aeronDirectory, launchDriver, endpoints, jobId, token,
            termLengthBytes, mtuBytes, streamIdBase, connectTimeoutNs, closeTimeoutNs, driverIdleMode, frameAuthentication,
            failureBoundNs, ownAeronDirectory, nodeOfRank, mtu);
    }

    public AeronTransportConfig withTimeouts(final long connectNs, final long closeNs) {
        return new AeronTransportConfig(rank, size, media, aeronDirectory, launchDriver, endpoints, jobId, token,
            termLengthBytes, mtuBytes, streamIdBase, connectNs, closeNs, driverIdleMode, frameAuthentication,
            failureBoundNs, ownAeronDirectory, nodeOfRank, ipcMtuBytes);
    }

    public AeronTransportConfig withDriverIdleMode(final IdleMode mode) {
        return new AeronTransportConfig(rank, size, media, aeronDirectory, launchDriver, endpoints, jobId, token,
            termLengthBytes, mtuBytes, streamIdBase, connectTimeoutNs, closeTimeoutNs, mode, frameAuthentication, failureBoundNs,
            ownAeronDirectory, nodeOfRank, ipcMtuBytes);
    }

    /** A copy with frame authentication on or off (measure its cost: {@code moeflow bench transport}). */
    public AeronTransportConfig withFrameAuthentication(final boolean on) {
        return new AeronTransportConfig(rank, size, media, aeronDirectory, launchDriver, endpoints, jobId, token,
            termLengthBytes, mtuBytes, streamIdBase, connectTimeoutNs, closeTimeoutNs, driverIdleMode, on,
            failureBoundNs, ownAeronDirectory, nodeOfRank, ipcMtuBytes);
    }

    /** A copy with another failure bound (see the record's {@code failureBoundNs}). */
    public AeronTransportConfig withFailureBoundNs(final long boundNs) {
        return new AeronTransportConfig(rank, size, media, aeronDirectory, launchDriver, endpoints, jobId, token,
            termLengthBytes, mtuBytes, streamIdBase, connectTimeoutNs, closeTimeoutNs, driverIdleMode, frameAuthentication,
            boundNs, ownAeronDirectory, nodeOfRank, ipcMtuBytes);
    }

    @Override
    public String toString() {
        return "AeronTransportConfig[rank=" + rank + " size=" + size + " media=" + media + " aeronDirectory=" + aeronDirectory
            + " launchDriver=" + launchDriver + " endpoints=" + endpoints + " jobId=" + jobId + " termLengthBytes="
            + termLengthBytes + " mtuBytes=" + mtuBytes + " connectTimeoutNs=" + connectTimeoutNs + " closeTimeoutNs="
            + closeTimeoutNs + " driverIdleMode=" + driverIdleMode + " frameAuthentication=" + frameAuthentication
            + " failureBoundNs=" + failureBoundNs
            + (media == AeronMedia.HYBRID ? " ownAeronDirectory=" + ownAeronDirectory + " nodeOfRank=" + nodeOfRank
                + " ipcMtuBytes=" + ipcMtuBytes : "") + "]";
    }
}
