package io.moeflow.launcher.launch;

import java.nio.file.Path;
import java.util.List;

import io.moeflow.transport.aeron.JobMediaDriver;
import io.moeflow.transport.rdma.TransportChoice;

/**
 * What the master of one job needs: the job's shape, its restart budget and timeouts, and the
 * command arguments every worker runs (the agents add the JVM and the per-rank environment).
 *
 * @param runId          names the job (the run name); the transport's job id adds the generation
 * @param nnodes         node agents expected (1 on one host)
 * @param nprocPerNode   workers each agent starts
 * @param maxRestarts    restarts of the whole group allowed for the job (one counter, not per agent)
 * @param joinTimeoutNs  how long agents, then workers of each generation, have to join
 * @param stopTimeoutNs  how long an agent has to stop its workers when told to
 * @param heartbeatIntervalNs how often master and agents beat each other; a node silent for {@link #MISSED_BEATS} beats is dead
 * @param failureBoundNs the transport's failure bound: when a rank dies, every other rank's operation fails within about
 *                       this long (the agents' media drivers and the workers' transports are tuned to it)
 * @param udpMtuBytes    the largest UDP frame between nodes (UDP and HYBRID transports)
 * @param argsHash       the hash of the train options ({@code NodeAgent}s must show the same)
 * @param workerArgs     the {@code moeflow} arguments of every worker, e.g. {@code train --run-name x ...}
 * @param restartArgs    added to {@code workerArgs} from the first restart on, e.g. {@code --resume auto}
 * @param runDir         where {@code rank-<k>.log} go
 * @param totalSteps     steps of the run (the progress line's denominator)
 * @param transport      the {@code --transport} flag ({@code auto|ipc|udp|rdma}); the master resolves it once every agent
 *                       has reported its RDMA probe
 */
public record LaunchPlan(String runId, int nnodes, int nprocPerNode, int maxRestarts, long joinTimeoutNs, long stopTimeoutNs,
                         long heartbeatIntervalNs, long failureBoundNs, int udpMtuBytes, String argsHash,
                         List<String> workerArgs, List<String> restartArgs, Path runDir, long totalSteps,
                         String transport) {

    /** Heartbeats a node may miss before it is declared dead. */
    public static final int MISSED_BEATS = 3;

    public LaunchPlan {
        if (runId == null || !runId.matches("[A-Za-z0-9._-]+")) {
            throw new IllegalArgumentException("runId=" + runId + ": use letters, digits, '.', '_' and '-'");
        }
        if (nnodes < 1 || nprocPerNode < 1) {
            throw new IllegalArgumentException("nnodes=" + nnodes + " nprocPerNode=" + nprocPerNode + ": both must be >= 1");
        }
        if (maxRestarts < 0) {
            throw new IllegalArgumentException("--max-restarts " + maxRestarts + ": must be >= 0");
        }
        if (joinTimeoutNs <= 0 || stopTimeoutNs <= 0) {
            throw new IllegalArgumentException("joinTimeoutNs=" + joinTimeoutNs + " stopTimeoutNs=" + stopTimeoutNs + ": must be > 0");
        }
        if (heartbeatIntervalNs <= 0) {
            throw new IllegalArgumentException("heartbeatIntervalNs=" + heartbeatIntervalNs + ": must be > 0");
        }
        JobMediaDriver.checkFailureBound(failureBoundNs);
        if (argsHash == null || argsHash.isEmpty()) {
            throw new IllegalArgumentException("argsHash: give the hash of the train options");
        }
        transport = TransportChoice.checkFlag(transport);
        workerArgs = List.copyOf(workerArgs);
        restartArgs = List.copyOf(restartArgs);
    }

    /** Ranks in the job. */
    public int worldSize() {
        return nnodes * nprocPerNode;
    }

    /** The arguments of generation {@code generation}'s workers (restarts resume). */
    public List<String> argsOf(final int generation) {
        if (generation == 0) {
            return workerArgs;
        }
        final java.util.ArrayList<String> all = new java.util.ArrayList<>(workerArgs);
        all.addAll(restartArgs);
        return all;
    }
}
