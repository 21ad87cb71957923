package io.moeflow.launcher.cluster;

import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * A launch running as one task of a Slurm job step ({@code srun}, usually inside an {@code sbatch} script): one
 * node agent per task. The task's {@code SLURM_PROCID} is its node rank and {@code SLURM_NTASKS} the number of
 * nodes (so {@code --ntasks-per-node=1} gives one agent per host); the first host of {@code SLURM_JOB_NODELIST}
 * runs the master, on port {@link #masterPort()}; the run is named {@code slurm-<job id>} unless
 * {@code --run-name} says otherwise. The join key is not derived from Slurm: the sbatch script exports
 * {@code MOEFLOW_JOIN_KEY} (srun passes the environment to every task).
 *
 * @param procId   SLURM_PROCID: this task's rank in the step
 * @param nTasks   SLURM_NTASKS: tasks in the step
 * @param localId  SLURM_LOCALID: this task's index on its host
 * @param nodeId   SLURM_NODEID: this host's index in the job
 * @param numNodes SLURM_JOB_NUM_NODES: hosts in the job
 * @param nodes    SLURM_JOB_NODELIST, expanded
 * @param jobId    SLURM_JOB_ID
 */
public record SlurmEnvironment(int procId, int nTasks, int localId, int nodeId, int numNodes, List<String> nodes, long jobId) {
    /** Lowest port of {@link #masterPort()}: below Linux's ephemeral range (32768-60999), above well-known services. */
    public static final int PORT_BASE = 20000;
    /** {@link #masterPort()} takes the job id modulo this. */
    public static final int PORT_SPAN = 10000;

    /** Validates the fields. */
    public SlurmEnvironment {
        nodes = List.copyOf(nodes);
        if (nTasks < 1 || procId < 0 || procId >= nTasks) {
            throw new IllegalArgumentException("Slurm: SLURM_PROCID=" + procId + " is not in [0, SLURM_NTASKS=" + nTasks + ")");
        }
        if (numNodes != nodes.size()) {
            throw new IllegalArgumentException("Slurm: SLURM_JOB_NUM_NODES=" + numNodes + " but SLURM_JOB_NODELIST names " + nodes.size()
                + " hosts " + nodes);
        }
        if (nodeId < 0 || nodeId >= numNodes) {
            throw new IllegalArgumentException("Slurm: SLURM_NODEID=" + nodeId + " is not in [0, SLURM_JOB_NUM_NODES=" + numNodes + ")");
        }
    }

    /**
     * Reads the Slurm variables of a task.
     *
     * @return empty outside Slurm (no SLURM_JOB_ID) and outside a job step (an sbatch script's own shell)
     * @throws IllegalArgumentException when a variable of a task is missing or malformed
     */
    public static Optional<SlurmEnvironment> detect(final Map<String, String> env) {
        if (env.get("SLURM_JOB_ID") == null) {
            return Optional.empty();
        }
        final String where = "Slurm job " + env.get("SLURM_JOB_ID");
        if (!inStep(env)) {
            return Optional.empty(); // an sbatch script's own shell: a one-host launch there is fine (see note)
        }
        final String nodeList = env.get("SLURM_JOB_NODELIST") != null ? env.get("SLURM_JOB_NODELIST") : env.get("SLURM_NODELIST");
        if (nodeList == null || nodeList.isBlank()) {
            throw new IllegalArgumentException(where + ": SLURM_JOB_NODELIST is not set");
        }
        final long jobId;
        try {
            jobId = Long.parseLong(env.get("SLURM_JOB_ID").strip());
        } catch (final NumberFormatException e) {
            throw new IllegalArgumentException(where + ": SLURM_JOB_ID is not a whole number");
        }
        final List<String> nodes = SlurmHostlist.expand(nodeList);
        final int numNodes = env.get("SLURM_JOB_NUM_NODES") != null ? ClusterDefaults.intVariable(env, "SLURM_JOB_NUM_NODES", where)
            : nodes.size();
        return Optional.of(new SlurmEnvironment(ClusterDefaults.intVariable(env, "SLURM_PROCID", where),
            ClusterDefaults.intVariable(env, "SLURM_NTASKS", where), ClusterDefaults.intVariable(env, "SLURM_LOCALID", where),
            ClusterDefaults.intVariable(env, "SLURM_NODEID", where), numNodes, nodes, jobId));
    }

    /** Whether the environment is a task of a job step (srun sets SLURM_STEP_ID; an sbatch script's shell has none). */
    private static boolean inStep(final Map<String, String> env) {
        return env.get("SLURM_STEP_ID") != null || env.get("SLURM_STEPID") != null;
    }

    /**
     * A note for a launch inside a Slurm job but outside srun (an sbatch script's own shell), which runs on the first
     * host only; empty otherwise.
     */
    public static Optional<String> outsideStepNote(final Map<String, String> env) {
        if (env.get("SLURM_JOB_ID") == null || inStep(env)) {
            return Optional.empty();
        }
        return Optional.of("note: inside Slurm job " + env.get("SLURM_JOB_ID") + " but not in a task of srun: launching on this host "
            + "only; for one node agent per host run it with srun --ntasks-per-node=1 (docs/launch.md)");
    }

    /** The first host of the job: it runs task 0 (Slurm's block distribution, the default), so the master. */
    public String masterAddr() {
        return nodes.get(0);
    }

    /**
     * The master's port: {@value #PORT_BASE} + job id mod {@value #PORT_SPAN}, so two jobs sharing a first host
     * collide only when their ids are equal modulo {@value #PORT_SPAN}, and every task computes the same port.
     */
    public int masterPort() {
        return PORT_BASE + (int) (jobId % PORT_SPAN);
    }

    /** The launch defaults this task implies. */
    public ClusterDefaults defaults() {
        return new ClusterDefaults(String.format("Slurm job %d: task %d of %d (host %d of %d, local task %d) -> node rank %d of %d, "
                + "master %s:%d", jobId, procId, nTasks, nodeId, numNodes, localId, procId, nTasks, masterAddr(), masterPort()),
            nTasks, procId, masterAddr(), masterPort(), "slurm-" + jobId);
    }
}
