package io.moeflow.transport.bench;

import java.util.concurrent.TimeUnit;

import io.moeflow.transport.fp8.Fp8Format;

/**
 * One run of {@code moeflow bench transport}.
 *
 * @param ranks         worker processes (>= 2)
 * @param op            the collective to sweep
 * @param minBytes      smallest size (bytes, >= 4)
 * @param maxBytes      largest size (bytes), also the size of the baselines
 * @param backend       IPC, UDP, or HYBRID: the ranks split into two simulated nodes on this host (ranks
 *                      0..p/2-1 and p/2..p-1), each node with its own shared media driver, IPC within a
 *                      node and UDP over loopback across
 * @param iterations    timed iterations per size; 0 picks them from the size (more for small sizes)
 * @param warmup        untimed iterations per size before timing; -1 picks them from the size
 * @param compression   FP8 format on the wire, or null for float32
 * @param baselines     also measure raw one-way Aeron, one-way point-to-point and a TCP ring all-reduce
 * @param udpMtuBytes   MTU for the UDP back-end (and HYBRID's UDP peers)
 * @param hybridIpcMtuBytes HYBRID: MTU between the ranks of one node (the UDP MTU reproduces a transport
 *                      with one largest frame for every peer, as before frames were sized per peer)
 * @param timeoutNs     the whole run must finish within this, or every worker is killed
 */
public record TransportBenchConfig(int ranks, BenchOp op, long minBytes, long maxBytes, Backend backend, int iterations,
                                   int warmup, Fp8Format compression, boolean baselines, int udpMtuBytes, long timeoutNs,
                                   int hybridIpcMtuBytes) {

    /** Where the frames go. */
    public enum Backend {
        IPC,
        UDP,
        HYBRID
    }

    /** Largest size: 1 GiB of floats per rank keeps every count an int and the workers' heaps sane. */
    public static final long MAX_BYTES = 1L << 30;

    public TransportBenchConfig {
        if (ranks < 2 || ranks > 16) {
            throw new IllegalArgumentException("--ranks=" + ranks + ": must be in [2, 16]");
        }
        if (op == null || backend == null) {
            throw new IllegalArgumentException("--op=" + op + " --backend=" + backend + ": both are required");
        }
        if (minBytes < 4 || maxBytes < minBytes || maxBytes > MAX_BYTES) {
            throw new IllegalArgumentException("--sizes=" + minBytes + ".." + maxBytes + ": need 4 B <= min <= max <= 1 GiB");
        }
        if (iterations < 0 || warmup < -1) {
            throw new IllegalArgumentException("--iters=" + iterations + " --warmup=" + warmup + ": must be >= 0 (warmup -1 = auto)");
        }
        if (udpMtuBytes % 32 != 0 || udpMtuBytes < 1024 || udpMtuBytes > 65504) {
            throw new IllegalArgumentException("--udp-mtu=" + udpMtuBytes + ": must be a multiple of 32 in [1024, 65504]");
        }
        if (hybridIpcMtuBytes % 32 != 0 || hybridIpcMtuBytes < 1024 || hybridIpcMtuBytes > 65504) {
            throw new IllegalArgumentException("--hybrid-ipc-mtu=" + hybridIpcMtuBytes + ": must be a multiple of 32 in [1024, 65504]");
        }
        if (backend == Backend.HYBRID && ranks % 2 != 0) {
            throw new IllegalArgumentException("--ranks=" + ranks + ": --backend hybrid puts half the ranks on each of two"
                + " simulated nodes; give an even number");
        }
        if (timeoutNs <= 0) {
            throw new IllegalArgumentException("--timeout=" + TimeUnit.NANOSECONDS.toSeconds(timeoutNs) + "s: must be > 0");
        }
    }

    /** HYBRID: the simulated node of {@code rank} (0 for the first half of the ranks, 1 for the second). */
    public int nodeOf(final int rank) {
        return rank < ranks / 2 ? 0 : 1;
    }

    /** Timed iterations for one size: as given, or enough to move about 256 MiB (20..1000). */
    public int iterationsFor(final long bytes) {
        if (iterations > 0) {
            return iterations;
        }
        return (int) Math.max(20, Math.min(1000, (256L << 20) / Math.max(1, bytes)));
    }

    /** Warm-up iterations for one size: as given, or a tenth of the timed ones (at least 5). */
    public int warmupFor(final long bytes) {
        return warmup >= 0 ? warmup : Math.max(5, iterationsFor(bytes) / 10);
    }
}
