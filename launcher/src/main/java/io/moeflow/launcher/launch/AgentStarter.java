package io.moeflow.launcher.launch;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;

/**
 * One way to run a node agent on node r of a job: over ssh (a hostfile), later {@code ip netns exec} (sim-cluster).
 * The agent's command is the ordinary static form ({@code ... launch --nnodes M --node-rank r ... --join-key-file -
 * train ...}); the caller writes the join key to the returned process's standard input, so it never appears on a
 * command line.
 */
public interface AgentStarter {
    /**
     * Starts {@code command} on node {@code node} in directory {@code workDir} (the same path on every node: the runs
     * directory is shared storage). Standard error is merged into standard output.
     *
     * @return the local process standing for the agent: it ends when the agent ends, and ending it cuts the agent off
     */
    Process start(int node, List<String> command, Path workDir) throws IOException;

    /** Where node {@code node} runs, for messages ({@code ssh worker-1}). */
    String where(int node);
}
