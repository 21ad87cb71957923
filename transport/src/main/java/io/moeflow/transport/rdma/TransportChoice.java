package io.moeflow.transport.rdma;

import java.util.Locale;

import io.moeflow.transport.TransportException;

/**
 * Resolves {@code --transport rdma|udp|ipc|auto} for the launcher and the simulator. {@code auto}
 * takes RDMA where {@link RdmaSupport} finds a device and libdisni, else Aeron IPC when every rank is
 * on this host and Aeron UDP across hosts, and says which and why. {@code rdma} where RDMA is
 * unavailable fails at start with one line naming what is missing and how to install it.
 *
 * @param kind   the back-end chosen
 * @param reason why, one line (print it at start)
 */
public record TransportChoice(Kind kind, String reason) {
    /** The back-ends. */
    public enum Kind {
        RDMA, UDP, IPC
    }

    /** The flag's accepted values, for help texts. */
    public static final String VALUES = "rdma|udp|ipc|auto";

    /**
     * @param flag            the flag's value (case-insensitive)
     * @param allOnThisHost   whether every rank of the job runs on this host
     * @param rdma            the host's probe ({@link RdmaSupport#probe()}; only consulted for rdma and auto)
     * @throws IllegalArgumentException for a value that is not one of {@link #VALUES}
     * @throws TransportException       for {@code rdma} on a host without RDMA
     */
    public static TransportChoice resolve(final String flag, final boolean allOnThisHost,
                                          final java.util.function.Supplier<RdmaSupport.Status> rdma) {
        final String value = flag == null ? "auto" : flag.trim().toLowerCase(Locale.ROOT);
        switch (value) {
            case "udp":
                return new TransportChoice(Kind.UDP, "udp (--transport udp)");
            case "ipc":
                if (!allOnThisHost) {
                    throw new IllegalArgumentException("--transport ipc: ranks run on more than one host, and IPC only"
                        + " reaches this host; use udp, rdma or auto");
                }
                return new TransportChoice(Kind.IPC, "ipc (--transport ipc)");
            case "rdma": {
                final RdmaSupport.Status status = rdma.get();
                if (!status.available()) {
                    throw new TransportException("--transport rdma: " + status.describe()
                        + " (or use --transport auto to fall back to " + (allOnThisHost ? "ipc" : "udp") + ")");
                }
                return new TransportChoice(Kind.RDMA, "rdma (--transport rdma)");
            }
            case "auto": {
                final RdmaSupport.Status status = rdma.get();
                if (status.available()) {
                    return new TransportChoice(Kind.RDMA, "rdma (auto: " + status.describe() + ")");
                }
                return allOnThisHost
                    ? new TransportChoice(Kind.IPC, "ipc (auto: all ranks on this host; " + status.describe() + ")")
                    : new TransportChoice(Kind.UDP, "udp (auto: ranks on several hosts; " + status.describe() + ")");
            }
            default:
                throw new IllegalArgumentException("--transport " + flag + ": must be one of " + VALUES);
        }
    }
}
