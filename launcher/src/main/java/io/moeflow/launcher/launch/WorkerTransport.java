package io.moeflow.launcher.launch;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;

import io.moeflow.transport.rdma.TransportChoice;

/**
 * The transport part of the rendezvous. A worker's WORKER hello says where it receives
 * ({@code addr}: its node address, {@code port}: a UDP port it found free there, optionally
 * {@code rdma}: its RDMA CM address {@code host:port}); the master's READY tells every worker the
 * back-end it chose ({@code transport}: ipc, udp, hybrid or rdma), every rank's UDP endpoint
 * ({@code endpoints}: {@code host:port} by rank, comma-separated), every rank's node index
 * ({@code nodes}) and, for rdma, every rank's RDMA address ({@code rdma}).
 *
 * @param kind          the back-end the master chose
 * @param endpoints     UDP endpoint ({@code host:port}, IPv6 in brackets) of each rank, by rank
 * @param nodeOfRank    node index of each rank
 * @param rdmaAddresses RDMA CM address ({@code host:port}) of each rank for rdma, else empty
 */
public record WorkerTransport(TransportChoice.Kind kind, List<String> endpoints, int[] nodeOfRank, List<String> rdmaAddresses) {

    public WorkerTransport {
        if (kind == null) {
            throw new IllegalArgumentException("kind=null: give the transport the master chose");
        }
        endpoints = List.copyOf(endpoints);
        nodeOfRank = nodeOfRank.clone();
        rdmaAddresses = List.copyOf(rdmaAddresses);
        if (endpoints.isEmpty() || endpoints.size() != nodeOfRank.length) {
            throw new IllegalArgumentException(endpoints.size() + " endpoints for " + nodeOfRank.length + " ranks: need one per rank");
        }
        endpoints.forEach(WorkerTransport::checkHostPort);
        if (kind == TransportChoice.Kind.RDMA && rdmaAddresses.size() != endpoints.size()) {
            throw new IllegalArgumentException("rdma with " + rdmaAddresses.size() + " RDMA addresses for " + endpoints.size()
                + " ranks: need one per rank");
        }
        rdmaAddresses.forEach(WorkerTransport::checkHostPort);
        if (Arrays.stream(nodeOfRank).anyMatch(n -> n < 0)) {
            throw new IllegalArgumentException("nodes " + Arrays.toString(nodeOfRank) + ": node indices must be >= 0");
        }
    }

    @Override
    public int[] nodeOfRank() {
        return nodeOfRank.clone();
    }

    /** Ranks in the job. */
    public int worldSize() {
        return endpoints.size();
    }

    /** The fields READY carries, to add to its gen, world, job and token. */
    public Map<String, String> readyFields() {
        final Map<String, String> fields = new LinkedHashMap<>();
        fields.put("transport", kind.wireName());
        fields.put("endpoints", String.join(",", endpoints));
        fields.put("nodes", Arrays.stream(nodeOfRank).mapToObj(Integer::toString).collect(Collectors.joining(",")));
        if (!rdmaAddresses.isEmpty()) {
            fields.put("rdma", String.join(",", rdmaAddresses));
        }
        return fields;
    }

    /**
     * Reads a READY message's transport fields.
     *
     * @throws IllegalArgumentException naming the field that is missing or malformed
     */
    public static WorkerTransport ofReady(final Message ready) {
        final TransportChoice.Kind kind;
        try {
            kind = TransportChoice.Kind.ofWireName(ready.get("transport"));
        } catch (final IllegalArgumentException e) {
            throw new IllegalArgumentException("rendezvous message READY: " + e.getMessage(), e);
        }
        final List<String> endpoints = List.of(ready.get("endpoints").split(",", -1));
        final String[] nodes = ready.get("nodes").split(",", -1);
        final int[] nodeOfRank = new int[nodes.length];
        for (int r = 0; r < nodes.length; r++) {
            try {
                nodeOfRank[r] = Integer.parseInt(nodes[r]);
            } catch (final NumberFormatException e) {
                throw new IllegalArgumentException("rendezvous message READY: field 'nodes' holds '" + nodes[r] + "', not a node index", e);
            }
        }
        final String rdma = ready.get("rdma", "");
        return new WorkerTransport(kind, endpoints, nodeOfRank, rdma.isEmpty() ? List.of() : List.of(rdma.split(",", -1)));
    }

    /** The fields a worker adds to its WORKER hello: {@code addr}, {@code port} and, if it has one, {@code rdma}. */
    public static Map<String, String> helloFields(final String nodeAddr, final int udpPort, final String rdmaAddress) {
        final Map<String, String> fields = new LinkedHashMap<>();
        fields.put("addr", nodeAddr);
        fields.put("port", Integer.toString(udpPort));
        if (rdmaAddress != null) {
            fields.put("rdma", rdmaAddress);
        }
        return fields;
    }

    /**
     * The UDP endpoint {@code host:port} a WORKER hello reports.
     *
     * @throws IllegalArgumentException when {@code addr} or {@code port} is missing or malformed
     */
    public static String endpointOf(final Message hello) {
        final int port = hello.getInt("port");
        final String endpoint = hostPort(hello.get("addr"), port);
        checkHostPort(endpoint);
        return endpoint;
    }

    /** {@code host:port}, with an IPv6 host in brackets (as Aeron's endpoints and RDMA CM addresses are written). */
    public static String hostPort(final String host, final int port) {
        return (host.indexOf(':') >= 0 && !host.startsWith("[") ? "[" + host + "]" : host) + ":" + port;
    }

    /** The host of a {@link #hostPort} string, without brackets. */
    public static String hostOf(final String hostPort) {
        final String host = hostPort.substring(0, hostPort.lastIndexOf(':'));
        return host.startsWith("[") && host.endsWith("]") ? host.substring(1, host.length() - 1) : host;
    }

    /** The port of a {@link #hostPort} string. */
    public static int portOf(final String hostPort) {
        return Integer.parseInt(hostPort.substring(hostPort.lastIndexOf(':') + 1));
    }

    private static void checkHostPort(final String hostPort) {
        final int colon = hostPort.lastIndexOf(':');
        boolean ok = colon > 0 && !hostPort.contains(",") && !hostPort.contains(" ");
        if (ok) {
            try {
                final int port = Integer.parseInt(hostPort.substring(colon + 1));
                ok = port > 0 && port < 65536;
            } catch (final NumberFormatException e) {
                ok = false;
            }
        }
        if (!ok) {
            throw new IllegalArgumentException("endpoint '" + hostPort + "': not host:port with a port in [1, 65535]");
        }
    }

    @Override
    public boolean equals(final Object o) {
        return o instanceof WorkerTransport t && kind == t.kind && endpoints.equals(t.endpoints)
            && Arrays.equals(nodeOfRank, t.nodeOfRank) && rdmaAddresses.equals(t.rdmaAddresses);
    }

    @Override
    public int hashCode() {
        return 31 * (31 * (31 * kind.hashCode() + endpoints.hashCode()) + Arrays.hashCode(nodeOfRank)) + rdmaAddresses.hashCode();
    }

    @Override
    public String toString() {
        return kind.wireName() + " endpoints " + endpoints + " nodes " + Arrays.toString(nodeOfRank)
            + (rdmaAddresses.isEmpty() ? "" : " rdma " + rdmaAddresses);
    }
}
