package io.moeflow.transport.rdma;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.IntFunction;

import io.moeflow.transport.Communicator;
import io.moeflow.transport.CommunicatorConfig;
import io.moeflow.transport.Communicators;
import io.moeflow.transport.JobToken;
import io.moeflow.transport.RankThreads;

/** A job of {@link RdmaTransport}s over an {@link InMemoryFabric}, ranks opened concurrently (the handshake needs all). */
final class RdmaTestJob {
    static final CommunicatorConfig CONFIG = CommunicatorConfig.DEFAULT.withOpTimeoutNs(TimeUnit.SECONDS.toNanos(10));

    private RdmaTestJob() {
    }

    /** Small frames, few credits and small registrations, so chunking, credits and both paths are exercised. */
    static RdmaTransportConfig smallConfig(final JobToken token, final int rank, final int size) {
        return RdmaTransportConfig.of("job-rdma-test", token, rank, size).withFrames(1024, 4, 8, 256)
            .withMaxRegistrationBytes(32 * 1024).withTimeouts(TimeUnit.SECONDS.toNanos(10), TimeUnit.SECONDS.toNanos(2));
    }

    static RdmaTransport[] open(final InMemoryFabric fabric, final IntFunction<RdmaTransportConfig> configs) {
        final RdmaTransport[] transports = new RdmaTransport[fabric.size()];
        RankThreads.run(fabric.size(), 30_000, rank -> transports[rank] = RdmaTransport.open(configs.apply(rank),
            fabric.verbs(rank)));
        return transports;
    }

    static List<Communicator> communicators(final int size, final long seed) {
        final JobToken token = JobToken.generate();
        final InMemoryFabric fabric = new InMemoryFabric(size, seed);
        final List<Communicator> comms = new ArrayList<>();
        for (final RdmaTransport t : open(fabric, rank -> smallConfig(token, rank, size))) {
            comms.add(Communicators.create(t, CONFIG));
        }
        return comms;
    }
}
