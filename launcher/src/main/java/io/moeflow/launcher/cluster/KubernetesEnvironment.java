package io.moeflow.launcher.cluster;

import java.util.Map;
import java.util.Optional;

/**
 * A launch running in a pod of a Kubernetes Indexed Job ({@code completionMode: Indexed}): the pod's
 * {@code JOB_COMPLETION_INDEX} is its node rank. Kubernetes tells a pod neither the job's size nor its peers'
 * names, so {@code --nnodes} (or {@code MOEFLOW_NNODES}) and {@code --master-addr} (or {@code MOEFLOW_MASTER_ADDR},
 * normally pod 0's stable DNS name {@code <job>-0.<headless service>}) come from the manifest;
 * {@code MOEFLOW_MASTER_PORT} is optional (default 29500). The run is named {@code MOEFLOW_RUN_NAME}, else
 * {@code k8s-<job>} where the pod's host name is {@code <job>-<index>}.
 *
 * @param index      JOB_COMPLETION_INDEX
 * @param nnodes     MOEFLOW_NNODES, or null
 * @param masterAddr MOEFLOW_MASTER_ADDR, or null
 * @param masterPort MOEFLOW_MASTER_PORT, or {@link ClusterDefaults#DEFAULT_MASTER_PORT}
 * @param runName    MOEFLOW_RUN_NAME, else k8s-(job name from HOSTNAME), or null
 */
public record KubernetesEnvironment(int index, Integer nnodes, String masterAddr, int masterPort, String runName) {
    /**
     * Reads the pod's variables.
     *
     * @return empty when JOB_COMPLETION_INDEX is not set
     * @throws IllegalArgumentException when a variable is malformed
     */
    public static Optional<KubernetesEnvironment> detect(final Map<String, String> env) {
        if (env.get("JOB_COMPLETION_INDEX") == null) {
            return Optional.empty();
        }
        final String where = "Kubernetes Indexed Job";
        final int index = ClusterDefaults.intVariable(env, "JOB_COMPLETION_INDEX", where);
        final Integer nnodes = env.get("MOEFLOW_NNODES") == null ? null : ClusterDefaults.intVariable(env, "MOEFLOW_NNODES", where);
        final int port = env.get("MOEFLOW_MASTER_PORT") == null ? ClusterDefaults.DEFAULT_MASTER_PORT
            : ClusterDefaults.intVariable(env, "MOEFLOW_MASTER_PORT", where);
        String runName = env.get("MOEFLOW_RUN_NAME");
        final String host = env.get("HOSTNAME");
        final String suffix = "-" + index;
        if (runName == null && host != null && host.endsWith(suffix) && host.length() > suffix.length()) {
            runName = "k8s-" + host.substring(0, host.length() - suffix.length());
        }
        return Optional.of(new KubernetesEnvironment(index, nnodes, env.get("MOEFLOW_MASTER_ADDR"), port, runName));
    }

    /**
     * The launch defaults of this pod.
     *
     * @param nnodesFlag     --nnodes when given, else null
     * @param masterAddrFlag --master-addr when given, else null
     * @throws IllegalArgumentException when the number of nodes or the master address is given neither way
     */
    public ClusterDefaults defaults(final Integer nnodesFlag, final String masterAddrFlag) {
        final Integer n = nnodesFlag != null ? nnodesFlag : nnodes;
        final String master = masterAddrFlag != null ? masterAddrFlag : masterAddr;
        if (n == null) {
            throw new IllegalArgumentException("Kubernetes Indexed Job (JOB_COMPLETION_INDEX=" + index + "): the number of nodes is "
                + "unknown; set MOEFLOW_NNODES to the job's completions or give --nnodes");
        }
        if (master == null || master.isBlank()) {
            throw new IllegalArgumentException("Kubernetes Indexed Job (JOB_COMPLETION_INDEX=" + index + "): no master address; set "
                + "MOEFLOW_MASTER_ADDR to pod 0's DNS name (<job>-0.<headless service>) or give --master-addr");
        }
        if (index >= n) {
            throw new IllegalArgumentException("Kubernetes Indexed Job: JOB_COMPLETION_INDEX=" + index + " but " + n + " nodes; "
                + "make MOEFLOW_NNODES (or --nnodes) equal to the job's completions");
        }
        return new ClusterDefaults(String.format("Kubernetes Indexed Job: pod %d of %d -> node rank %d, master %s:%d", index, n, index,
            master, masterPort), n, index, master, masterPort, runName);
    }
}
