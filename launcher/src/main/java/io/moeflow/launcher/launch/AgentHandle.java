package io.moeflow.launcher.launch;

/**
 * A node agent this launcher started for the job: in a thread of this process (node 0 of a static
 * launch), or on another node (ssh, srun, a network namespace). The launcher awaits it after the
 * master has ended the job, and reports why it ended early.
 */
public interface AgentHandle {
    /** Waits at most {@code timeoutNs} for the agent to end. */
    void await(long timeoutNs) throws InterruptedException;

    /** Why the agent ended early (could not join, lost the master), or null. */
    String failure();
}
