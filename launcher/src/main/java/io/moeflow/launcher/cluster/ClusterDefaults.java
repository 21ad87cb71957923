package io.moeflow.launcher.cluster;

import java.util.Map;
import java.util.Optional;

/**
 * What the batch system a launch runs under says about the job: the defaults of {@code moeflow launch}'s
 * {@code --nnodes}, {@code --node-rank}, {@code --master-addr}, {@code --master-port} and the train option
 * {@code --run-name}. Flags given on the command line win over these.
 *
 * @param detected   one line saying what was detected, printed by launch
 * @param nnodes     node agents in the job, >= 1
 * @param nodeRank   this agent's node rank, in [0, nnodes)
 * @param masterAddr host of node 0, where the master listens
 * @param masterPort the master's TCP port
 * @param runName    a run name every node computes alike, or null for none
 */
public record ClusterDefaults(String detected, int nnodes, int nodeRank, String masterAddr, int masterPort, String runName) {
    /** The master port when the environment gives none (torchrun's and DeepSpeed's default). */
    public static final int DEFAULT_MASTER_PORT = 29500;

    /** Validates the fields. */
    public ClusterDefaults {
        if (nnodes < 1 || nodeRank < 0 || nodeRank >= nnodes) {
            throw new IllegalArgumentException(detected + ": node rank " + nodeRank + " of " + nnodes + " nodes is out of range");
        }
        if (masterAddr == null || masterAddr.isBlank()) {
            throw new IllegalArgumentException(detected + ": no master address");
        }
        if (masterPort < 1 || masterPort > 65535) {
            throw new IllegalArgumentException(detected + ": master port " + masterPort + " is not in [1, 65535]");
        }
    }

    /**
     * Detects Slurm (a task of {@code srun}) or else a Kubernetes Indexed Job from the environment.
     *
     * @param env            the process environment (tests pass their own)
     * @param nnodesFlag     --nnodes when given on the command line, else null (Kubernetes needs it or MOEFLOW_NNODES)
     * @param masterAddrFlag --master-addr when given, else null (Kubernetes needs it or MOEFLOW_MASTER_ADDR)
     * @return empty when neither runs this process
     * @throws IllegalArgumentException when the environment is detected but incomplete or inconsistent, saying what to set
     */
    public static Optional<ClusterDefaults> detect(final Map<String, String> env, final Integer nnodesFlag, final String masterAddrFlag) {
        final Optional<SlurmEnvironment> slurm = SlurmEnvironment.detect(env);
        if (slurm.isPresent()) {
            return Optional.of(slurm.get().defaults());
        }
        return KubernetesEnvironment.detect(env).map(k -> k.defaults(nnodesFlag, masterAddrFlag));
    }

    /** An environment variable as a whole number, or an error naming it. */
    static int intVariable(final Map<String, String> env, final String name, final String where) {
        final String value = env.get(name);
        if (value == null || value.isBlank()) {
            throw new IllegalArgumentException(where + ": " + name + " is not set");
        }
        try {
            return Integer.parseInt(value.strip());
        } catch (final NumberFormatException e) {
            throw new IllegalArgumentException(where + ": " + name + "=" + value + " is not a whole number");
        }
    }
}
