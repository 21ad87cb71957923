package io.moeflow.transport.bench;

import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.UUID;
import java.util.concurrent.TimeUnit;

import org.agrona.BufferUtil;
import org.agrona.MutableDirectBuffer;
import org.agrona.UnsafeApi;
import org.agrona.concurrent.UnsafeBuffer;

import io.moeflow.transport.Communicator;
import io.moeflow.transport.CommunicatorConfig;
import io.moeflow.transport.Communicators;
import io.moeflow.transport.FrameAction;
import io.moeflow.transport.FrameHandler;
import io.moeflow.transport.Fp8Compression;
import io.moeflow.transport.IdleMode;
import io.moeflow.transport.JobToken;
import io.moeflow.transport.ReduceOp;
import io.moeflow.transport.Transport;
import io.moeflow.transport.TransportException;
import io.moeflow.transport.Wire;
import io.moeflow.transport.aeron.AeronTransport;
import io.moeflow.transport.aeron.AeronTransportConfig;
import io.moeflow.transport.aeron.JobMediaDriver;

/**
 * {@code moeflow bench transport}: an nccl-tests style sweep of one collective across worker JVMs,
 * on float[] and on off-heap buffers, each size next to the memory-traffic bound of its algorithm
 * ({@link MemoryBound}, from the copy bandwidth the ranks measure at that size in the same run),
 * plus, in the same run and between the same processes, the baselines it is judged against: raw
 * one-way Aeron throughput (bytes only), one-way point-to-point of a float[] (ours), and a ring
 * all-reduce over plain TCP sockets (what people write by hand).
 *
 * <p>The coordinator ({@link #run}) creates the job (directory under /dev/shm, token, IPC media
 * driver or UDP ports), starts the workers with a command supplied by the caller (the launcher
 * re-invokes itself), streams rank 0's report and cleans everything up, killing the workers on
 * failure or timeout. Each worker ({@link #runWorker}) connects, sweeps the sizes and measures
 * the baselines; rank 0 prints.
 */
public final class TransportBenchmark {
    /** Builds the command line of one worker JVM. */
    @FunctionalInterface
    public interface WorkerCommand {
        List<String> command(TransportBenchConfig config, WorkerSpec spec);
    }

    /** The first line of the report begins with this (the launcher's chart takes its title from the rest). */
    public static final String REPORT_TITLE_PREFIX = "# moeflow bench transport: ";
    private static final long CONNECT_TIMEOUT_NS = TimeUnit.SECONDS.toNanos(60);
    /** Interleaved rounds of the operation and the baselines; the median of 5 shrugs off two disturbed rounds. */
    private static final int BASELINE_ROUNDS = 5;
    private static final double GB = 1e9;
    /** Job directories live in shared memory: Aeron's log buffers are memory-mapped files. */
    private static final Path SHARED_MEMORY = Paths.get("/dev/shm");
    private static final String JOB_DIR_PREFIX = "moeflow-";

    private TransportBenchmark() {
    }

    /** The job token file inside a job directory. */
    public static Path tokenFile(final Path jobDir) {
        return jobDir.resolve("job.token");
    }

    /** The Aeron directory of a rank: the shared IPC driver's, or the rank's own UDP driver's (UDP, HYBRID). */
    public static String aeronDirectory(final Path jobDir, final TransportBenchConfig.Backend backend, final int rank) {
        return jobDir.resolve(backend == TransportBenchConfig.Backend.IPC ? "aeron-ipc" : "aeron-udp-" + rank).toString();
    }

    /** HYBRID: the shared driver's directory of simulated node {@code node}. */
    public static String nodeDirectory(final Path jobDir, final int node) {
        return jobDir.resolve("aeron-node-" + node).toString();
    }

    /**
     * Runs the benchmark: starts {@code config.ranks()} workers and prints rank 0's report to {@code out}.
     *
     * @return 0 if every worker finished, 1 otherwise (the workers' last log lines are printed)
     */
    public static int run(final TransportBenchConfig config, final WorkerCommand workerCommand, final PrintStream out) {
        final String jobId = "bench-" + UUID.randomUUID();
        for (final Path abandoned : JobDirectory.removeAbandoned(SHARED_MEMORY, JOB_DIR_PREFIX)) {
            out.println("# removed " + abandoned + ": its benchmark was killed before it could clean up");
        }
        final Path jobDir = SHARED_MEMORY.resolve(JOB_DIR_PREFIX + jobId);
        final boolean hybrid = config.backend() == TransportBenchConfig.Backend.HYBRID;
        // closed in reverse order: the workers, the drivers (IPC: the host's; HYBRID: each node's), then the directory
        try (JobDirectory job = JobDirectory.create(SHARED_MEMORY, JOB_DIR_PREFIX + jobId);
             JobMediaDriver driver = config.backend() == TransportBenchConfig.Backend.IPC
                 ? JobMediaDriver.launch(aeronDirectory(jobDir, config.backend(), 0), IdleMode.BACKOFF) : null;
             JobMediaDriver node0 = hybrid ? JobMediaDriver.launch(nodeDirectory(jobDir, 0), IdleMode.BACKOFF) : null;
             JobMediaDriver node1 = hybrid ? JobMediaDriver.launch(nodeDirectory(jobDir, 1), IdleMode.BACKOFF) : null) {
            JobToken.generate().writeTo(tokenFile(job.path()));
            final List<String> endpoints = config.backend() != TransportBenchConfig.Backend.IPC
                ? LoopbackPorts.udpEndpoints(config.ranks()) : List.of();
            final List<Integer> tcpPorts = LoopbackPorts.tcpPorts(config.ranks());
            final List<List<String>> commands = new ArrayList<>();
            for (int r = 0; r < config.ranks(); r++) {
                commands.add(workerCommand.command(config, new WorkerSpec(r, jobDir, jobId, endpoints, tcpPorts)));
            }
            try (WorkerProcesses workers = WorkerProcesses.start(commands, jobDir.resolve("logs"), out::println)) {
                final int[] codes = workers.awaitAll(config.timeoutNs());
                if (Arrays.stream(codes).allMatch(c -> c == 0)) {
                    return 0;
                }
                out.println("# bench transport FAILED: worker exit codes " + Arrays.toString(codes)
                    + (Arrays.stream(codes).anyMatch(c -> c == -1) ? " (-1: killed after --timeout)" : ""));
                for (int r = 1; r < workers.size(); r++) {
                    out.println("# --- worker " + r + " log (last lines):");
                    workers.tail(r, 20).lines().forEach(line -> out.println("#   " + line));
                }
                return 1;
            }
        } catch (final IOException e) {
            throw new UncheckedIOException("bench transport: could not set up the job in " + jobDir + ": " + e.getMessage(), e);
        }
    }

    /**
     * One worker: connects, sweeps the sizes, measures the baselines; rank 0 prints to {@code out}.
     *
     * @return the process exit code
     */
    public static int runWorker(final TransportBenchConfig config, final WorkerSpec spec, final PrintStream out)
        throws IOException, InterruptedException {
        WorkerProcesses.exitWhenParentDies();
        final JobToken token = JobToken.readFrom(tokenFile(spec.jobDir()));
        final String dir = aeronDirectory(spec.jobDir(), config.backend(), spec.rank());
        final AeronTransportConfig transportConfig = switch (config.backend()) {
            case IPC -> AeronTransportConfig.ipc(spec.rank(), config.ranks(), dir, spec.jobId(), token)
                .withTimeouts(CONNECT_TIMEOUT_NS, AeronTransportConfig.DEFAULT_CLOSE_TIMEOUT_NS);
            case UDP -> udpConfig(config, spec, token, dir, spec.udpEndpoints());
            case HYBRID -> hybridConfig(config, spec, token, dir);
        };
        final Transport transport = AeronTransport.connect(transportConfig);
        // the benchmark may spin while it measures; tests and training use the backoff default
        final CommunicatorConfig commConfig = CommunicatorConfig.DEFAULT.withIdleMode(IdleMode.SPIN);
        // over UDP, the cost of frame authentication: the same probe again over connections without it
        final boolean macCost = config.baselines() && transportConfig.frameAuthentication()
            && config.backend() == TransportBenchConfig.Backend.UDP;
        final int[] ports = new int[config.ranks()];
        final double[] withMac;
        try (Communicator comm = Communicators.create(transport, commConfig)) {
            final Worker worker = new Worker(config, spec, comm, transport, commConfig, spec.rank() == 0 ? out : null);
            worker.sweep();
            if (config.baselines()) {
                worker.baselines();
            }
            withMac = macCost ? worker.authenticationProbe() : null;
            if (macCost) {
                final String endpoint = LoopbackPorts.udpEndpoints(1).get(0);
                ports[spec.rank()] = Integer.parseInt(endpoint.substring(endpoint.lastIndexOf(':') + 1));
                comm.allGather(ports, 0, 1);
            }
            comm.barrier();
        }
        if (macCost) {
            final List<String> endpoints = new ArrayList<>();
            for (final int port : ports) {
                endpoints.add("127.0.0.1:" + port);
            }
            final Transport plain = AeronTransport.connect(udpConfig(config, spec, token, dir + "-no-mac", endpoints)
                .withFrameAuthentication(false));
            try (Communicator comm = Communicators.create(plain, commConfig)) {
                final Worker worker = new Worker(config, spec, comm, plain, commConfig, spec.rank() == 0 ? out : null);
                worker.printAuthenticationCost(withMac, worker.authenticationProbe());
                comm.barrier();
            }
        }
        return 0;
    }

    private static AeronTransportConfig udpConfig(final TransportBenchConfig config, final WorkerSpec spec, final JobToken token,
                                                  final String dir, final List<String> endpoints) {
        return AeronTransportConfig.udp(spec.rank(), config.ranks(), dir, endpoints, spec.jobId(), token)
            .withTermAndMtu(AeronTransportConfig.DEFAULT_TERM_LENGTH_BYTES, config.udpMtuBytes())
            .withDriverIdleMode(IdleMode.SPIN) // over UDP each worker's own driver moves the data
            .withTimeouts(CONNECT_TIMEOUT_NS, AeronTransportConfig.DEFAULT_CLOSE_TIMEOUT_NS);
    }

    /** HYBRID: IPC to the rank's simulated node through that node's driver, UDP over loopback to the other node. */
    private static AeronTransportConfig hybridConfig(final TransportBenchConfig config, final WorkerSpec spec, final JobToken token,
                                                     final String dir) {
        final int[] nodeOfRank = new int[config.ranks()];
        for (int r = 0; r < nodeOfRank.length; r++) {
            nodeOfRank[r] = config.nodeOf(r);
        }
        return AeronTransportConfig.hybrid(spec.rank(), config.ranks(), nodeDirectory(spec.jobDir(), config.nodeOf(spec.rank())), dir,
                spec.udpEndpoints(), nodeOfRank, spec.jobId(), token)
            .withTermAndMtu(AeronTransportConfig.DEFAULT_TERM_LENGTH_BYTES, config.udpMtuBytes())
            .withIpcMtu(config.hybridIpcMtuBytes())
            // a driver per rank and one per node share the host's cores with the ranks: spinning ones starve them
            .withDriverIdleMode(IdleMode.BACKOFF)
            .withTimeouts(CONNECT_TIMEOUT_NS, AeronTransportConfig.DEFAULT_CLOSE_TIMEOUT_NS);
    }

    /** The measuring side of one worker process. */
    private static final class Worker {
        private final TransportBenchConfig config;
        private final WorkerSpec spec;
        private final Communicator comm;
        private final Transport transport;
        private final CommunicatorConfig commConfig;
        private final PrintStream out;
        private final int p;
        private double firstMedianUs;
        private double firstMeanUs;
        private long firstBytes;
        /** Source and target of the copy-bandwidth measurement (direct memory of the largest size). */
        private UnsafeBuffer copyFrom;
        private UnsafeBuffer copyTo;

        Worker(final TransportBenchConfig config, final WorkerSpec spec, final Communicator comm, final Transport transport,
               final CommunicatorConfig commConfig, final PrintStream out) {
            this.config = config;
            this.spec = spec;
            this.comm = comm;
            this.transport = transport;
            this.commConfig = commConfig;
            this.out = out;
            this.p = comm.size();
        }

        private void print(final String line) {
            if (out != null) {
                out.println(line);
                out.flush();
            }
        }

        void sweep() {
            print(String.format(Locale.ROOT, REPORT_TITLE_PREFIX + "%s, %d ranks (one JVM each), backend %s, %s on the wire,"
                    + " idle spin while measuring", config.op().cliName(), p, transport.describe().replaceAll(":.*", ""),
                config.compression() == null ? "float32" : config.compression().cliName()));
            print(String.format(Locale.ROOT, "# host: %d cores, Java %s. Times are per operation, averaged over ranks;"
                    + " p50 is rank 0's median.", Runtime.getRuntime().availableProcessors(), System.getProperty("java.version")));
            if (config.backend() == TransportBenchConfig.Backend.HYBRID) {
                // rank 0's peers: rank 1 shares its node when there are 4 ranks or more, rank p-1 is on the other node
                print(String.format(Locale.ROOT, "# hybrid: 2 simulated nodes of %d ranks on this host; frames up to %s B within a"
                    + " node (IPC MTU %d), %d B across (UDP MTU %d, authenticated)", p / 2,
                    p >= 4 ? Integer.toString(transport.maxFrameLength(1)) : "-", config.hybridIpcMtuBytes(),
                    transport.maxFrameLength(p - 1), config.udpMtuBytes()));
            }
            print("# time/p50/busbw: float[] buffers; off-heap: the same operation on UnsafeBuffers over direct memory;"
                + " copy: GB/s each rank copies at this size with all ranks copying at once; bound: the busbw that copy rate allows"
                + " for this algorithm's passes over memory (MemoryBound); %: busbw / bound.");
            print(String.format(Locale.ROOT, "# %12s %10s %6s %-8s %6s %11s %11s %11s %11s %11s %11s %11s %11s %10s %10s %8s %8s",
                "size(B)", "count", "redop", "algo", "iters", "time(us)", "p50(us)", "algbw(GB/s)", "busbw(GB/s)", "wire(B/op)",
                "off-time", "off-p50", "off-busbw", "copy(GB/s)", "bound", "float[]%", "off%"));
            final List<Long> sizes = new ArrayList<>();
            for (long s = config.minBytes(); s <= config.maxBytes(); s *= 2) {
                if (config.op().floats(s, p) > 0) {
                    sizes.add(s);
                }
            }
            warmUp(sizes);
            for (final long bytes : sizes) {
                measure(bytes);
            }
        }

        /**
         * Runs the smallest size a few thousand times and a mid size a few dozen times, untimed and
         * whatever {@code --iters} says, so that the JIT has compiled the hot paths before the first row.
         */
        private void warmUp(final List<Long> sizes) {
            repeat(sizes.get(0), 3000);
            repeat(Math.min(sizes.get(sizes.size() - 1), 1L << 20), 30);
            comm.barrier();
        }

        private void repeat(final long bytes, final int times) {
            final Operands operands = new Operands(bytes);
            for (int i = 0; i < times; i++) {
                operands.run(false);
                operands.run(true);
            }
        }

        /**
         * The buffers of one operation of one size, as float[] and as off-heap memory (zeros: sums never
         * become denormal or infinite).
         */
        private final class Operands {
            final int n;
            final float[] buf;
            final float[] recv;
            final UnsafeBuffer offHeapBuf;
            final UnsafeBuffer offHeapRecv;
            final int[] counts;
            final Fp8Compression fp8;

            Operands(final long bytes) {
                n = config.op().floats(bytes, p);
                buf = new float[n];
                recv = config.op() == BenchOp.ALLTOALL ? new float[n] : null;
                offHeapBuf = new UnsafeBuffer(BufferUtil.allocateDirectAligned(Math.max(64, 4 * n), 64));
                offHeapRecv = config.op() == BenchOp.ALLTOALL
                    ? new UnsafeBuffer(BufferUtil.allocateDirectAligned(Math.max(64, 4 * n), 64)) : null;
                counts = new int[p];
                Arrays.fill(counts, n / p);
                fp8 = config.compression() == null ? null : Fp8Compression.of(config.compression());
            }

            void run(final boolean offHeap) {
                if (offHeap) {
                    runOffHeap();
                    return;
                }
                switch (config.op()) {
                    case ALLREDUCE:
                        comm.allReduce(buf, 0, n, ReduceOp.SUM, fp8);
                        break;
                    case REDUCESCATTER:
                        comm.reduceScatter(buf, 0, n / p, ReduceOp.SUM, fp8);
                        break;
                    case ALLGATHER:
                        comm.allGather(buf, 0, n / p, fp8);
                        break;
                    case ALLTOALL:
                        comm.allToAll(buf, 0, counts, recv, 0, counts, fp8);
                        break;
                    case BROADCAST:
                        comm.broadcast(buf, 0, n, 0);
                        break;
                    default:
                        throw new IllegalStateException(config.op().name());
                }
            }

            private void runOffHeap() {
                switch (config.op()) {
                    case ALLREDUCE:
                        comm.allReduce(offHeapBuf, 0, n, ReduceOp.SUM, fp8);
                        break;
                    case REDUCESCATTER:
                        comm.reduceScatter(offHeapBuf, 0, n / p, ReduceOp.SUM, fp8);
                        break;
                    case ALLGATHER:
                        comm.allGather(offHeapBuf, 0, n / p, fp8);
                        break;
                    case ALLTOALL:
                        comm.allToAll(offHeapBuf, 0, counts, offHeapRecv, 0, counts, fp8);
                        break;
                    case BROADCAST:
                        comm.broadcast(offHeapBuf, 0, n, 0);
                        break;
                    default:
                        throw new IllegalStateException(config.op().name());
                }
            }
        }

        /** Mean (averaged over ranks) and rank 0's median of one path at one size. */
        private record Timing(double meanUs, double p50Us, long wirePerOp) {
        }

        private Timing time(final Operands operands, final boolean offHeap, final int iters, final int warmup) {
            final long[] samples = new long[iters];
            comm.barrier();
            for (int i = 0; i < warmup; i++) {
                operands.run(offHeap);
            }
            comm.barrier();
            final long wireBefore = comm.counters().bytesSent();
            long total = 0;
            for (int i = 0; i < iters; i++) {
                final long t0 = System.nanoTime();
                operands.run(offHeap);
                samples[i] = System.nanoTime() - t0;
                total += samples[i];
            }
            final long wirePerOp = (comm.counters().bytesSent() - wireBefore) / iters;
            final float[] meanUs = {(float) (total / 1e3 / iters)};
            comm.allReduce(meanUs, 0, 1, ReduceOp.AVERAGE);
            Arrays.sort(samples);
            final float[] p50Us = {(float) (samples[iters / 2] / 1e3)};
            comm.broadcast(p50Us, 0, 1, 0);
            return new Timing(meanUs[0], p50Us[0], wirePerOp);
        }

        /**
         * GB/s each rank copies {@code bytes} from one direct buffer to another while every rank does the
         * same (the memory system is shared), averaged over ranks: about 32 MiB per rank, at least 4 copies.
         */
        private double copyRate(final long bytes) {
            if (copyFrom == null) {
                final int largest = (int) Math.max(64, config.maxBytes());
                copyFrom = new UnsafeBuffer(BufferUtil.allocateDirectAligned(largest, 64));
                copyTo = new UnsafeBuffer(BufferUtil.allocateDirectAligned(largest, 64));
            }
            final long from = copyFrom.addressOffset();
            final long to = copyTo.addressOffset();
            final int reps = (int) Math.max(4, Math.min(200_000, (32L << 20) / bytes));
            comm.barrier();
            for (int i = 0; i < Math.min(reps, 1000); i++) { // untimed: page in, compile
                UnsafeApi.copyMemory(null, from, null, to, bytes);
            }
            comm.barrier();
            final long t0 = System.nanoTime();
            for (int i = 0; i < reps; i++) {
                UnsafeApi.copyMemory(null, from, null, to, bytes);
            }
            final float[] gbps = {(float) ((double) bytes * reps / (System.nanoTime() - t0))}; // bytes per ns = GB/s
            comm.allReduce(gbps, 0, 1, ReduceOp.AVERAGE);
            return gbps[0];
        }

        private void measure(final long bytes) {
            final BenchOp op = config.op();
            final Operands operands = new Operands(bytes);
            final int n = operands.n;
            final int iters = config.iterationsFor(bytes);
            final int warmup = config.warmupFor(bytes);
            final Timing heap = time(operands, false, iters, warmup);
            final Timing offHeap = time(operands, true, iters, warmup);
            final long reportedBytes = 4L * n;
            final double algbw = reportedBytes / (heap.meanUs() / 1e6) / GB;
            final double busbw = algbw * op.busFactor(p);
            final double offHeapBusbw = reportedBytes / (offHeap.meanUs() / 1e6) / GB * op.busFactor(p);
            final double copy = copyRate(reportedBytes);
            final double bound = MemoryBound.busBandwidthBound(op, p, smallMessageAlgorithm(n, operands.fp8 != null), copy);
            if (firstBytes == 0) {
                firstBytes = reportedBytes;
                firstMedianUs = heap.p50Us();
                firstMeanUs = heap.meanUs();
            }
            print(String.format(Locale.ROOT, "  %12d %10d %6s %-8s %6d %11.2f %11.2f %11.3f %11.3f %11d %11.2f %11.2f %11.3f"
                    + " %10.2f %10.3f %7.1f%% %7.1f%%", reportedBytes, n,
                op == BenchOp.ALLREDUCE || op == BenchOp.REDUCESCATTER ? "sum" : "none", algorithm(n, operands.fp8 != null), iters,
                heap.meanUs(), heap.p50Us(), algbw, busbw, heap.wirePerOp(), offHeap.meanUs(), offHeap.p50Us(), offHeapBusbw,
                copy, bound, 100 * busbw / bound, 100 * offHeapBusbw / bound));
        }

        private boolean smallMessageAlgorithm(final int n, final boolean compressed) {
            switch (config.op()) {
                case ALLREDUCE:
                    return commConfig.allReduceUsesRecursiveDoubling(n, compressed);
                case BROADCAST:
                    return commConfig.broadcastUsesTree(n);
                default:
                    return false;
            }
        }

        private String algorithm(final int n, final boolean compressed) {
            switch (config.op()) {
                case ALLREDUCE:
                    return commConfig.allReduceUsesRecursiveDoubling(n, compressed) ? "rec-dbl" : "ring";
                case BROADCAST:
                    return commConfig.broadcastUsesTree(n) ? "tree" : "chain";
                case ALLTOALL:
                    return "pairwise";
                default:
                    return "ring";
            }
        }

        /**
         * Measures the operation at the largest size and the three baselines in interleaved rounds
         * (operation, raw, one-way, TCP, then again), so that a busy machine slows all of them alike,
         * and reports the median of the rounds.
         */
        void baselines() throws IOException, InterruptedException {
            final int n = (int) (config.maxBytes() / 4);
            final long bytes = 4L * n;
            final int iters = Math.max(3, Math.min(12, (int) ((256L << 20) / bytes)));
            final int rounds = BASELINE_ROUNDS;
            final double[] operation = new double[rounds];
            final double[] offHeapOperation = new double[rounds];
            final double[] copy = new double[rounds];
            final double[] raw = new double[rounds];
            final double[] oneWay = new double[rounds];
            final double[] tcp = new double[rounds];
            final Operands operands = new Operands(bytes);
            final float[] data = new float[n]; // for the one-way and TCP baselines
            try (TcpRingAllReduce ring = new TcpRingAllReduce(spec.rank(), p, spec.tcpPorts(), n, TimeUnit.SECONDS.toNanos(60))) {
                for (int round = 0; round < rounds; round++) {
                    operation[round] = busBandwidth(bytes, timeOperation(operands, false, iters));
                    offHeapOperation[round] = busBandwidth(bytes, timeOperation(operands, true, iters));
                    copy[round] = copyRate(4L * config.op().floats(bytes, p));
                    raw[round] = rawOneWay(bytes, iters);
                    oneWay[round] = pointToPointOneWay(data, n, iters);
                    tcp[round] = tcpAllReduce(ring, data, n, iters);
                }
            }
            final double op = median(operation);
            final double offHeapOp = median(offHeapOperation);
            final double copyMedian = median(copy);
            final double bound = MemoryBound.busBandwidthBound(config.op(), p,
                smallMessageAlgorithm(operands.n, operands.fp8 != null), copyMedian);
            final double rawMedian = median(raw);
            final double tcpMedian = median(tcp);
            print("#");
            print(String.format(Locale.ROOT, "# at %d B between the same processes, medians of %d interleaved rounds of %d"
                + " iterations (one-way: rank 0 -> rank 1):", bytes, rounds, iters));
            print(String.format(Locale.ROOT, "#   %-44s: %8.3f GB/s busbw", config.op().cliName() + " float[] (this run's operation)", op));
            print(String.format(Locale.ROOT, "#   %-44s: %8.3f GB/s busbw", config.op().cliName() + " off-heap (UnsafeBuffer)", offHeapOp));
            print(String.format(Locale.ROOT, "#   %-44s: %8.3f GB/s per rank, all ranks at once", "memory copy (direct buffers)",
                copyMedian));
            print(String.format(Locale.ROOT, "#   %-44s: %8.3f GB/s busbw (%.2f passes per byte)", "memory bound of " + algorithm(
                operands.n, operands.fp8 != null), bound, MemoryBound.passesPerByte(config.op(), p,
                smallMessageAlgorithm(operands.n, operands.fp8 != null))));
            print(String.format(Locale.ROOT, "#   %-44s: %8.3f GB/s", "aeron " + config.backend().name().toLowerCase(Locale.ROOT)
                + " raw one-way (bytes, no copy out)", rawMedian));
            print(String.format(Locale.ROOT, "#   %-44s: %8.3f GB/s", "moeflow send/recv float[] one-way", median(oneWay)));
            print(String.format(Locale.ROOT, "#   %-44s: %8.3f GB/s busbw", "tcp ring all-reduce (loopback sockets)", tcpMedian));
            if (config.compression() == null && config.backend() == TransportBenchConfig.Backend.IPC) {
                // over UDP the kernel copies each datagram twice more: the bound counts only our passes
                print("# aims (issue 8: at least 80% of the memory bound at 64 MiB, on the off-heap path at least):");
                print(String.format(Locale.ROOT, "#   %d B %s busbw / memory bound: float[] %5.1f%%, off-heap %5.1f%%  (aim >= 80%%: %s)",
                    bytes, config.op().cliName(), 100 * op / bound, 100 * offHeapOp / bound,
                    offHeapOp >= 0.8 * bound ? "met" : "NOT met"));
            }
            if (config.op() == BenchOp.ALLREDUCE && config.compression() == null) {
                print("# aims (issue 4):");
                print(String.format(Locale.ROOT, "#   %d B all-reduce busbw / tcp ring busbw    = %5.2fx  (aim >= 3x: %s)",
                    bytes, op / tcpMedian, op >= 3 * tcpMedian ? "met" : "NOT met"));
                print(String.format(Locale.ROOT, "#   %d B all-reduce p50 latency                = %6.1f us, mean %.1f us (aim < 50 us: %s)",
                    firstBytes, firstMedianUs, firstMeanUs, firstMedianUs < 50 ? "met" : "NOT met"));
            }
        }

        /**
         * The operation on float[] at the largest size (busbw, median of the interleaving rounds) and at
         * the smallest (p50 and mean, the sweep's iterations), for comparing two connections.
         *
         * @return {busbw GB/s, p50 us, mean us}
         */
        double[] authenticationProbe() {
            final long largest = config.maxBytes();
            final int iters = Math.max(3, Math.min(12, (int) ((256L << 20) / largest)));
            final Operands large = new Operands(largest);
            final double[] busbw = new double[BASELINE_ROUNDS];
            for (int round = 0; round < BASELINE_ROUNDS; round++) {
                busbw[round] = busBandwidth(largest, timeOperation(large, false, iters));
            }
            final Operands small = new Operands(config.minBytes());
            final Timing timing = time(small, false, config.iterationsFor(config.minBytes()), config.warmupFor(config.minBytes()));
            return new double[] {median(busbw), timing.p50Us(), timing.meanUs()};
        }

        void printAuthenticationCost(final double[] withMac, final double[] withoutMac) {
            print("#");
            print("# frame authentication over UDP (HMAC-SHA256/128 tag and sequence number on every data frame), "
                + config.op().cliName() + " on float[]: measured over the authenticated connections after the baselines,"
                + " then over fresh unauthenticated ones");
            final String format = "#   %-22s: %d B busbw %8.3f GB/s; %d B p50 %8.2f us, mean %8.2f us";
            print(String.format(Locale.ROOT, format, "with MAC (the default)", config.maxBytes(), withMac[0], config.minBytes(),
                withMac[1], withMac[2]));
            print(String.format(Locale.ROOT, format, "without MAC", config.maxBytes(), withoutMac[0], config.minBytes(),
                withoutMac[1], withoutMac[2]));
            print(String.format(Locale.ROOT, "#   %-22s: busbw %+.1f%%, p50 %+.2f us", "MAC cost",
                100 * (withMac[0] / withoutMac[0] - 1), withMac[1] - withoutMac[1]));
        }

        private double busBandwidth(final long bytes, final double seconds) {
            return 4L * config.op().floats(bytes, p) / seconds / GB * config.op().busFactor(p);
        }

        /** Mean seconds per operation over {@code iters} runs, averaged over ranks. */
        private double timeOperation(final Operands operands, final boolean offHeap, final int iters) {
            comm.barrier();
            final long t0 = System.nanoTime();
            for (int i = 0; i < iters; i++) {
                operands.run(offHeap);
            }
            final float[] seconds = {(float) ((System.nanoTime() - t0) / 1e9 / iters)};
            comm.allReduce(seconds, 0, 1, ReduceOp.AVERAGE);
            return seconds[0];
        }

        private static double median(final double[] values) {
            final double[] sorted = values.clone();
            Arrays.sort(sorted);
            return sorted[sorted.length / 2];
        }

        /** Rank 0 streams {@code bytes} as maximal frames to rank 1, which only counts them and acknowledges. */
        private double rawOneWay(final long bytes, final int iters) {
            comm.barrier();
            final int frame = transport.maxFrameLength(comm.rank() == 1 ? 0 : 1); // ranks 0 and 1: the same length at both ends
            final UnsafeBuffer source = new UnsafeBuffer(BufferUtil.allocateDirectAligned(frame, 64));
            Wire.putPreamble(source, 0, Wire.KIND_DATA, (byte) 0);
            source.putInt(Wire.OFFSET_GROUP, -1); // no operation's group: never mistaken for collective data
            final long[] received = {0};
            final FrameHandler counter = (buffer, offset, length) -> {
                received[0] += length - Wire.HEADER_LENGTH;
                return FrameAction.CONTINUE;
            };
            final long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
            final int lane = transport.lanes() - 1; // a bulk lane no operation uses while this runs
            long total = 0;
            for (int it = -2; it < iters; it++) { // two warm-up rounds
                final long t0 = System.nanoTime();
                final long frames = (bytes + frame - Wire.HEADER_LENGTH - 1) / (frame - Wire.HEADER_LENGTH) + 1; // + ack
                if (comm.rank() == 0) {
                    for (long f = 0; f < frames - 1; f++) {
                        int offset;
                        while ((offset = transport.tryClaim(1, lane, frame)) < 0) {
                            idle(deadline, "raw send");
                        }
                        final MutableDirectBuffer target = transport.claimBuffer(1, lane);
                        target.putBytes(offset, source, 0, frame);
                        transport.commit(1, lane);
                    }
                    while (transport.poll(1, lane, counter, 1) == 0) {
                        idle(deadline, "raw ack");
                    }
                } else if (comm.rank() == 1) {
                    received[0] = 0;
                    final long payload = (frames - 1) * (frame - Wire.HEADER_LENGTH);
                    while (received[0] < payload) {
                        if (transport.poll(0, lane, counter, 64) == 0) {
                            idle(deadline, "raw receive");
                        }
                    }
                    int offset;
                    while ((offset = transport.tryClaim(0, lane, frame)) < 0) {
                        idle(deadline, "raw ack");
                    }
                    transport.claimBuffer(0, lane).putBytes(offset, source, 0, frame);
                    transport.commit(0, lane);
                }
                final long elapsed = System.nanoTime() - t0;
                if (it >= 0) {
                    total += elapsed;
                }
            }
            final float[] gbps = {(float) (bytes / (total / (double) iters))}; // bytes per ns = GB/s
            comm.broadcast(gbps, 0, 1, 0);
            return gbps[0];
        }

        /** Waits like the engine's SPIN mode (yield the core, never park), within the deadline. */
        private static void idle(final long deadline, final String what) {
            if (System.nanoTime() > deadline) {
                throw new TransportException("bench transport: " + what + " did not finish in 120 s");
            }
            Thread.yield();
        }

        private double pointToPointOneWay(final float[] buf, final int n, final int iters) {
            comm.barrier();
            final float[] ack = new float[1];
            long total = 0;
            for (int it = -2; it < iters; it++) {
                final long t0 = System.nanoTime();
                if (comm.rank() == 0) {
                    comm.send(1, buf, 0, n);
                    comm.recv(1, ack, 0, 1);
                } else if (comm.rank() == 1) {
                    comm.recv(0, buf, 0, n);
                    comm.send(0, ack, 0, 1);
                }
                if (it >= 0) {
                    total += System.nanoTime() - t0;
                }
            }
            final float[] gbps = {(float) (4L * n / (total / (double) iters))};
            comm.broadcast(gbps, 0, 1, 0);
            return gbps[0];
        }

        private double tcpAllReduce(final TcpRingAllReduce ring, final float[] buf, final int n, final int iters)
            throws IOException, InterruptedException {
            comm.barrier();
            final long t0 = System.nanoTime();
            for (int it = 0; it < iters; it++) {
                ring.allReduce(buf, n);
            }
            final float[] seconds = {(float) ((System.nanoTime() - t0) / 1e9 / iters)};
            comm.allReduce(seconds, 0, 1, ReduceOp.AVERAGE);
            return 4.0 * n / seconds[0] / GB * BenchOp.ALLREDUCE.busFactor(p);
        }
    }
}
