package io.moeflow.transport.rdma;

import java.util.List;
import java.util.Locale;

import io.moeflow.transport.TransportException;

/**
 * Resolves {@code --transport auto|ipc|udp|rdma} for a job of one or more nodes, once, at the
 * master. {@code auto} takes RDMA when every node has it ({@link RdmaSupport}: a device, the verbs
 * libraries and libdisni), else Aeron IPC on one node, and across nodes IPC within a node and UDP
 * between nodes (hybrid; plain UDP when each node holds one rank), and says which and why.
 * {@code rdma} where a node lacks RDMA fails at start with one line naming the node, what is
 * missing and how to install it.
 *
 * @param kind   the back-end chosen
 * @param reason why, one line (print it at start)
 */
public record TransportChoice(Kind kind, String reason) {
    /** The back-ends. */
    public enum Kind {
        /** RDMA between every pair of ranks. */
        RDMA,
        /** Aeron UDP between every pair of ranks, each rank with its own media driver. */
        UDP,
        /** Aeron IPC through the node's shared media driver: one node only. */
        IPC,
        /** Aeron IPC between the ranks of a node, UDP between nodes. */
        HYBRID;

        /** The name on the wire and in messages: {@code rdma}, {@code udp}, {@code ipc}, {@code hybrid}. */
        public String wireName() {
            return name().toLowerCase(Locale.ROOT);
        }

        /** The kind named {@code name} (a {@link #wireName()}). */
        public static Kind ofWireName(final String name) {
            for (final Kind k : values()) {
                if (k.wireName().equals(name)) {
                    return k;
                }
            }
            throw new IllegalArgumentException("transport '" + name + "': not one of rdma, udp, ipc, hybrid");
        }
    }

    /** The flag's accepted values, for help texts. */
    public static final String VALUES = "auto|ipc|udp|rdma";

    /**
     * One node's RDMA probe.
     *
     * @param node   names the node in messages, e.g. {@code node 1 (host gpu-2)}
     * @param status its {@link RdmaSupport#probe()}
     */
    public record NodeRdma(String node, RdmaSupport.Status status) {
    }

    /**
     * The flag's value, normalised ({@code auto} when null).
     *
     * @throws IllegalArgumentException for a value that is not one of {@link #VALUES}
     */
    public static String checkFlag(final String flag) {
        final String value = flag == null ? "auto" : flag.trim().toLowerCase(Locale.ROOT);
        if (!List.of("auto", "ipc", "udp", "rdma").contains(value)) {
            throw new IllegalArgumentException("--transport " + flag + ": must be one of " + VALUES);
        }
        return value;
    }

    /**
     * @param flag          the flag's value (case-insensitive; null means auto)
     * @param nprocPerNode  ranks on each node
     * @param nodes         every node's probe, by node index (only consulted for rdma and auto)
     * @throws IllegalArgumentException for a value that is not one of {@link #VALUES}, or ipc across nodes
     * @throws TransportException       for {@code rdma} when a node lacks RDMA
     */
    public static TransportChoice resolve(final String flag, final int nprocPerNode, final List<NodeRdma> nodes) {
        final String value = checkFlag(flag);
        if (nodes.isEmpty() || nprocPerNode < 1) {
            throw new IllegalArgumentException("nodes=" + nodes.size() + " nprocPerNode=" + nprocPerNode + ": need at least one of each");
        }
        final boolean oneNode = nodes.size() == 1;
        final String fallback = oneNode ? "ipc" : nprocPerNode == 1 ? "udp" : "hybrid";
        switch (value) {
            case "udp":
                return new TransportChoice(Kind.UDP, "udp between every pair of ranks (--transport udp)");
            case "ipc":
                if (!oneNode) {
                    throw new IllegalArgumentException("--transport ipc: the job spans " + nodes.size() + " nodes, and IPC only"
                        + " reaches the ranks of one node; use auto (ipc within a node, udp across), udp or rdma");
                }
                return new TransportChoice(Kind.IPC, "ipc through this node's media driver (--transport ipc)");
            case "rdma": {
                final NodeRdma lacking = firstLacking(nodes);
                if (lacking != null) {
                    throw new TransportException("--transport rdma: " + lacking.node() + ": " + lacking.status().describe()
                        + othersLacking(nodes) + " (or use --transport auto to fall back to " + fallback + ")");
                }
                return new TransportChoice(Kind.RDMA, "rdma between every pair of ranks (--transport rdma)");
            }
            default: {
                final NodeRdma lacking = firstLacking(nodes);
                if (lacking == null) {
                    return new TransportChoice(Kind.RDMA, "rdma (auto: " + (oneNode ? "this node has" : "every node has")
                        + " a device, libibverbs, librdmacm and libdisni)");
                }
                final String why = lacking.node() + ": " + lacking.status().describe();
                if (oneNode) {
                    return new TransportChoice(Kind.IPC, "ipc (auto: one node; " + why + ")");
                }
                return nprocPerNode == 1
                    ? new TransportChoice(Kind.UDP, "udp (auto: " + nodes.size() + " nodes of one rank; " + why + ")")
                    : new TransportChoice(Kind.HYBRID, "hybrid: ipc within a node, udp across nodes (auto: " + nodes.size()
                        + " nodes; " + why + ")");
            }
        }
    }

    private static NodeRdma firstLacking(final List<NodeRdma> nodes) {
        return nodes.stream().filter(n -> !n.status().available()).findFirst().orElse(null);
    }

    private static String othersLacking(final List<NodeRdma> nodes) {
        final long others = nodes.stream().filter(n -> !n.status().available()).count() - 1;
        return others == 0 ? "" : " (and " + others + " other node" + (others == 1 ? "" : "s") + " lack RDMA too)";
    }
}
