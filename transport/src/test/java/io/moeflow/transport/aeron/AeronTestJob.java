package io.moeflow.transport.aeron;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.TimeUnit;

import org.agrona.IoUtil;

import io.moeflow.transport.JobToken;

/** A job's identity for tests: unique directories under /dev/shm, a token, loopback UDP ports. */
public final class AeronTestJob implements AutoCloseable {
    public final String jobId = "test-" + UUID.randomUUID();
    public final JobToken token = JobToken.generate();
    public final Path root = Paths.get("/dev/shm", "moeflow-" + jobId);

    public AeronTestJob() throws IOException {
        Files.createDirectories(root);
    }

    /** The IPC driver directory of the job. */
    public String ipcDirectory() {
        return root.resolve("aeron-ipc").toString();
    }

    /** An IPC config for one rank, with short timeouts for tests. */
    public AeronTransportConfig ipc(final int rank, final int size) {
        return AeronTransportConfig.ipc(rank, size, ipcDirectory(), jobId, token)
            .withTermAndMtu(1 << 20, AeronTransportConfig.DEFAULT_IPC_MTU_BYTES)
            .withTimeouts(TimeUnit.SECONDS.toNanos(20), TimeUnit.SECONDS.toNanos(2));
    }

    /** A UDP config for one rank (its own driver), with short timeouts for tests. */
    public AeronTransportConfig udp(final int rank, final List<String> endpoints) {
        return AeronTransportConfig.udp(rank, endpoints.size(), root.resolve("aeron-udp-" + rank).toString(), endpoints,
                jobId, token)
            .withTermAndMtu(1 << 20, 8192)
            .withTimeouts(TimeUnit.SECONDS.toNanos(20), TimeUnit.SECONDS.toNanos(2));
    }

    /** The shared driver directory of node {@code node} of a HYBRID job (launched by the test, as a node agent would). */
    public String nodeDirectory(final int node) {
        return root.resolve("aeron-node-" + node).toString();
    }

    /** A HYBRID config for one rank: its node's shared driver, its own UDP driver, short timeouts for tests. */
    public AeronTransportConfig hybrid(final int rank, final int[] nodeOfRank, final List<String> endpoints) {
        return AeronTransportConfig.hybrid(rank, nodeOfRank.length, nodeDirectory(nodeOfRank[rank]),
                root.resolve("aeron-own-" + rank).toString(), endpoints, nodeOfRank, jobId, token)
            .withTermAndMtu(1 << 20, 8192)
            .withTimeouts(TimeUnit.SECONDS.toNanos(20), TimeUnit.SECONDS.toNanos(2));
    }

    @Override
    public void close() {
        IoUtil.delete(root.toFile(), true);
    }
}
