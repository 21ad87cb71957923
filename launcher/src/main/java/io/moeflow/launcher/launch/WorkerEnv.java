package io.moeflow.launcher.launch;

/** Names of the environment variables a node agent gives each worker (torchrun's, plus MoEFlow's own). */
public final class WorkerEnv {
    public static final String RANK = "RANK";
    public static final String LOCAL_RANK = "LOCAL_RANK";
    public static final String WORLD_SIZE = "WORLD_SIZE";
    public static final String LOCAL_WORLD_SIZE = "LOCAL_WORLD_SIZE";
    /** The node's rank (torchrun's GROUP_RANK). */
    public static final String GROUP_RANK = "GROUP_RANK";
    public static final String MASTER_ADDR = "MASTER_ADDR";
    public static final String MASTER_PORT = "MASTER_PORT";
    /** The job's id (the run name); its presence makes {@code moeflow train} a worker of a launched job. */
    public static final String RUN_ID = "MOEFLOW_RUN_ID";
    /** The generation: 0, then one more after each restart (torchrun's TORCHELASTIC_RESTART_COUNT). */
    public static final String GENERATION = "MOEFLOW_GENERATION";
    /** The node's job directory under /dev/shm (Aeron's files); the worker's watchdog removes it if the launcher dies. */
    public static final String JOB_DIR = "MOEFLOW_JOB_DIR";
    /** The Aeron directory of this generation's IPC media driver, run by the node agent. */
    public static final String AERON_DIR = "MOEFLOW_AERON_DIR";
    /** The node agent's pid: the worker exits when it is gone. */
    public static final String AGENT_PID = "MOEFLOW_AGENT_PID";
    /** Seconds a worker waits for the rendezvous to complete (the launcher's --join-timeout). */
    public static final String JOIN_TIMEOUT_S = "MOEFLOW_JOIN_TIMEOUT_S";
    /** The node's rank (the same as {@link #GROUP_RANK}). */
    public static final String NODE_RANK = "MOEFLOW_NODE_RANK";
    /** The address this node's workers receive UDP and RDMA on ({@code --node-addr}, or the agent's address towards the master). */
    public static final String NODE_ADDR = "MOEFLOW_NODE_ADDR";
    /** The {@code --transport} flag ({@code auto|ipc|udp|rdma}); READY says what the master chose. */
    public static final String TRANSPORT = "MOEFLOW_TRANSPORT";
    /** The job's transport failure bound in milliseconds (launch --failure-bound), the same on every node. */
    public static final String FAILURE_BOUND_MS = "MOEFLOW_FAILURE_BOUND_MS";
    /** The largest UDP frame between nodes in bytes (launch --udp-mtu), the same on every node. */
    public static final String UDP_MTU = "MOEFLOW_UDP_MTU";
    /** Test hook: this worker never joins the rendezvous (the launcher must time out and say so). */
    public static final String TEST_NEVER_JOIN = "MOEFLOW_TEST_NEVER_JOIN";

    private WorkerEnv() {
    }
}
