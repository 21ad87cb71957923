package io.moeflow.transport.bench;

import java.nio.file.Path;
import java.util.List;

/**
 * What one benchmark worker needs besides the {@link TransportBenchConfig}: its rank and the job's
 * shared facts, chosen by the coordinator. The job directory holds the token file and the Aeron
 * directories ({@link TransportBenchmark#tokenFile}, {@link TransportBenchmark#aeronDirectory}).
 *
 * @param rank         this worker's rank
 * @param jobDir       the job's directory under /dev/shm
 * @param jobId        the job's id
 * @param udpEndpoints loopback {@code host:port} per rank (UDP back-end; empty for IPC)
 * @param tcpPorts     loopback TCP port per rank for the TCP baseline
 */
public record WorkerSpec(int rank, Path jobDir, String jobId, List<String> udpEndpoints, List<Integer> tcpPorts) {
    public WorkerSpec {
        if (rank < 0 || jobDir == null || jobId == null || jobId.isBlank()) {
            throw new IllegalArgumentException("rank=" + rank + " jobDir=" + jobDir + " jobId=" + jobId + ": all are required");
        }
        udpEndpoints = udpEndpoints == null ? List.of() : List.copyOf(udpEndpoints);
        tcpPorts = tcpPorts == null ? List.of() : List.copyOf(tcpPorts);
    }
}
