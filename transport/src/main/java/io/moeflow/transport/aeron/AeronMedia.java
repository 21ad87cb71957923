package io.moeflow.transport.aeron;

/** Which Aeron media carries the frames. */
public enum AeronMedia {
    /** Shared memory between processes of one host, through one media driver they all connect to. */
    IPC,
    /** UDP unicast between hosts (or processes on one host over loopback); one media driver per process. */
    UDP,
    /**
     * Several nodes: IPC through the node's shared driver to the ranks of the same node, UDP through
     * the rank's own driver to the ranks of other nodes.
     */
    HYBRID
}
