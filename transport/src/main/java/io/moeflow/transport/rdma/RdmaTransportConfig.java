package io.moeflow.transport.rdma;

import java.util.concurrent.TimeUnit;

import io.moeflow.transport.JobToken;

/**
 * Settings of one rank's {@link RdmaTransport}.
 *
 * @param jobId                 the job's id (bound into the handshake)
 * @param token                 the job token every rank proves it holds
 * @param rank                  this rank
 * @param size                  ranks in the job
 * @param maxFrameLengthBytes   largest frame, as the other back-ends (64 KiB)
 * @param creditsPerLane        receive slots per peer and lane: frames a sender may have unconsumed there
 * @param sendSlotsPerPeer      frames to one peer whose send has not completed yet
 * @param eagerLimitBytes       frames up to this size go by SEND into a posted receive buffer of this
 *                              size (then copied into the lane's slot); larger ones by RDMA WRITE with
 *                              immediate straight into the slot
 * @param maxRegistrationBytes  largest single memory registration (2 GiB on hardware; small in tests)
 * @param connectTimeoutNs      bound on connecting and authenticating all peers
 * @param drainTimeoutNs        bound on {@link RdmaTransport#close} waiting for peers to consume what was sent
 */
public record RdmaTransportConfig(String jobId, JobToken token, int rank, int size, int maxFrameLengthBytes,
                                  int creditsPerLane, int sendSlotsPerPeer, int eagerLimitBytes, long maxRegistrationBytes,
                                  long connectTimeoutNs, long drainTimeoutNs) {
    /** Largest registration DiSNI can make: its lengths are {@code int}s. */
    public static final long MAX_REGISTRATION_BYTES = Integer.MAX_VALUE;

    public RdmaTransportConfig {
        if (jobId == null || token == null) {
            throw new IllegalArgumentException("jobId and token are required");
        }
        if (size < 1 || rank < 0 || rank >= size) {
            throw new IllegalArgumentException("rank=" + rank + " size=" + size + ": need 0 <= rank < size");
        }
        if (maxFrameLengthBytes < 256 || maxFrameLengthBytes > (1 << 24) - 1) {
            throw new IllegalArgumentException("maxFrameLengthBytes=" + maxFrameLengthBytes + ": must be in [256, 16 MiB)");
        }
        if (creditsPerLane < 1 || sendSlotsPerPeer < 2) {
            throw new IllegalArgumentException("creditsPerLane=" + creditsPerLane + " sendSlotsPerPeer=" + sendSlotsPerPeer
                + ": need at least 1 credit and 2 send slots");
        }
        if (eagerLimitBytes < 256 || eagerLimitBytes > maxFrameLengthBytes) {
            throw new IllegalArgumentException("eagerLimitBytes=" + eagerLimitBytes + ": must be in [256, maxFrameLengthBytes]");
        }
        if (maxRegistrationBytes < 4096 || maxRegistrationBytes > MAX_REGISTRATION_BYTES) {
            throw new IllegalArgumentException("maxRegistrationBytes=" + maxRegistrationBytes + ": must be in [4096, 2^31-1]");
        }
        if (connectTimeoutNs <= 0 || drainTimeoutNs < 0) {
            throw new IllegalArgumentException("connectTimeoutNs=" + connectTimeoutNs + " drainTimeoutNs=" + drainTimeoutNs);
        }
    }

    /** Defaults: 64 KiB frames, 16 credits per lane, 32 send slots, SEND up to 4 KiB, 2 GiB registrations. */
    public static RdmaTransportConfig of(final String jobId, final JobToken token, final int rank, final int size) {
        return new RdmaTransportConfig(jobId, token, rank, size, 64 * 1024, 16, 32, 4096, MAX_REGISTRATION_BYTES,
            TimeUnit.SECONDS.toNanos(30), TimeUnit.SECONDS.toNanos(5));
    }

    public RdmaTransportConfig withFrames(final int maxFrameLength, final int credits, final int sendSlots, final int eagerLimit) {
        return new RdmaTransportConfig(jobId, token, rank, size, maxFrameLength, credits, sendSlots, eagerLimit,
            maxRegistrationBytes, connectTimeoutNs, drainTimeoutNs);
    }

    public RdmaTransportConfig withMaxRegistrationBytes(final long bytes) {
        return new RdmaTransportConfig(jobId, token, rank, size, maxFrameLengthBytes, creditsPerLane, sendSlotsPerPeer,
            eagerLimitBytes, bytes, connectTimeoutNs, drainTimeoutNs);
    }

    public RdmaTransportConfig withTimeouts(final long connectNs, final long drainNs) {
        return new RdmaTransportConfig(jobId, token, rank, size, maxFrameLengthBytes, creditsPerLane, sendSlotsPerPeer,
            eagerLimitBytes, maxRegistrationBytes, connectNs, drainNs);
    }
}
