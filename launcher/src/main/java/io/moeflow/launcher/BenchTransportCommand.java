package io.moeflow.launcher;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;

import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import io.moeflow.launcher.report.LineRecorder;
import io.moeflow.launcher.report.TransportBenchChart;
import io.moeflow.transport.PeerFailureException;
import io.moeflow.transport.bench.BenchOp;
import io.moeflow.transport.bench.TransportBenchConfig;
import io.moeflow.transport.bench.TransportBenchmark;
import io.moeflow.transport.bench.WorkerProcesses;
import io.moeflow.transport.bench.WorkerSpec;
import io.moeflow.transport.fp8.Fp8Format;

/**
 * {@code moeflow bench transport}: turns options into a {@link TransportBenchConfig} and hands over to
 * {@link TransportBenchmark}. The same command, with hidden {@code --worker-*} options, is what each
 * worker JVM runs.
 */
@Command(
    name = "transport",
    mixinStandardHelpOptions = true,
    description = "Time a collective across worker JVMs like nccl-tests (size, time, algbw, busbw) on float[] and off-heap"
        + " buffers against a measured memory bound, together with raw one-way Aeron, one-way send/recv and a TCP-socket ring"
        + " all-reduce measured between the same processes, and (all-reduce) PyTorch's gloo when /usr/bin/python3 has torch.")
public final class BenchTransportCommand implements Callable<Integer> {
    @Option(names = "--ranks", defaultValue = "2", description = "Worker JVMs (ranks), 2..16. Default: ${DEFAULT-VALUE}.")
    int ranks;

    @Option(names = "--op", defaultValue = "allreduce",
        description = "allreduce, alltoall, reducescatter, allgather or broadcast. Default: ${DEFAULT-VALUE}.")
    String op;

    @Option(names = "--sizes", defaultValue = "8B..64MiB",
        description = "Sizes MIN..MAX, doubling (B, KiB, MiB, GiB). MAX is also the baselines' size. Default: ${DEFAULT-VALUE}.")
    String sizes;

    @Option(names = "--backend", defaultValue = "ipc", description = "ipc (shared memory), udp (loopback) or hybrid (two simulated"
        + " nodes of half the ranks each: ipc within a node, udp across). Default: ${DEFAULT-VALUE}.")
    String backend;

    @Option(names = "--iters", defaultValue = "0",
        description = "Timed iterations per size; 0 = enough to move ~256 MiB (20..1000). Default: ${DEFAULT-VALUE}.")
    int iterations;

    @Option(names = "--warmup", defaultValue = "-1", description = "Warm-up iterations per size; -1 = a tenth of --iters. Default: ${DEFAULT-VALUE}.")
    int warmup;

    @Option(names = "--compression", defaultValue = "none", description = "none, fp8-e4m3 or fp8-e5m2. Default: ${DEFAULT-VALUE}.")
    String compression;

    @Option(names = "--no-baselines", negatable = false, description = "Skip the raw Aeron, send/recv and TCP baselines.")
    boolean noBaselines;

    @Option(names = "--udp-mtu", defaultValue = "8192",
        description = "MTU of the UDP back-end in bytes (loopback allows jumbo frames). Default: ${DEFAULT-VALUE}.")
    int udpMtu;

    @Option(names = "--hybrid-ipc-mtu", defaultValue = "65504", description = "MTU between the ranks of one node with --backend"
        + " hybrid; the --udp-mtu value gives every peer the UDP frame size (as before frames were sized per peer)."
        + " Default: ${DEFAULT-VALUE}.")
    int hybridIpcMtu;

    @Option(names = "--timeout", defaultValue = "600", description = "Seconds before every worker is killed. Default: ${DEFAULT-VALUE}.")
    long timeoutSeconds;

    @Option(names = "--python", paramLabel = "EXE", defaultValue = "/usr/bin/python3",
        description = "Python with torch for the gloo peer (all-reduce without compression). Default: ${DEFAULT-VALUE}.")
    Path python;

    @Option(names = "--no-gloo", negatable = false, description = "Skip the PyTorch gloo peer.")
    boolean noGloo;

    @Option(names = "--chart", paramLabel = "FILE",
        description = "Where to draw the sweep and baselines as a PNG. Default: runs/bench/transport-OP-BACKEND-Nranks.png.")
    Path chart;

    @Option(names = "--worker-rank", hidden = true, defaultValue = "-1")
    int workerRank;

    @Option(names = "--worker-job-dir", hidden = true)
    Path workerJobDir;

    @Option(names = "--worker-job-id", hidden = true)
    String workerJobId;

    @Option(names = "--worker-udp-endpoints", hidden = true, split = ",")
    List<String> workerUdpEndpoints = new ArrayList<>();

    @Option(names = "--worker-tcp-ports", hidden = true, split = ",")
    List<Integer> workerTcpPorts = new ArrayList<>();

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() throws Exception {
        final TransportBenchConfig config;
        try {
            config = config();
        } catch (final IllegalArgumentException e) {
            throw new CommandLine.ParameterException(spec.commandLine(), "moeflow bench transport: " + e.getMessage());
        }
        if (workerRank < 0) {
            final LineRecorder report = new LineRecorder(System.out);
            final int code = TransportBenchmark.run(config, BenchTransportCommand::workerCommand, report);
            if (code == 0 && !noGloo && config.op() == BenchOp.ALLREDUCE && config.compression() == null) {
                runGloo(config, report);
            }
            final Path file = chart != null ? chart : Path.of(TrainDefaults.RUNS_DIR, "bench", String.format("transport-%s-%s-%dranks.png",
                config.op().cliName(), config.backend().name().toLowerCase(Locale.ROOT), config.ranks()));
            if (code == 0 && TransportBenchChart.write(report.lines(), file)) {
                System.out.println("chart: " + file);
            }
            return code;
        }
        try {
            return TransportBenchmark.runWorker(config,
                new WorkerSpec(workerRank, workerJobDir, workerJobId, workerUdpEndpoints, workerTcpPorts), System.out);
        } catch (final PeerFailureException e) {
            System.err.println("moeflow bench transport: " + e.getMessage());
            return 3;
        }
    }

    /** Runs PyTorch's gloo all-reduce over the same sizes and prints it beside the sweep, or says in one line why not. */
    private void runGloo(final TransportBenchConfig config, final LineRecorder report) {
        final Path script = Path.of(System.getProperty("moeflow.home", "."), "bench", "torch_gloo_allreduce.py");
        final String why = GlooPeer.unavailable(python, script);
        if (why != null) {
            report.println("# gloo peer: skipped (" + why + ")");
            return;
        }
        try {
            GlooPeer.printComparison(GlooPeer.run(python, script, config), TransportBenchChart.parse(report.lines()), report);
        } catch (final IOException | IllegalStateException e) {
            report.println("# gloo peer: FAILED, no gloo column: " + e.getMessage());
        }
    }

    TransportBenchConfig config() {
        final long[] range = ByteSizes.parseRange("--sizes", sizes);
        return new TransportBenchConfig(ranks, parseOp(op), range[0], range[1], parseBackend(backend), iterations, warmup,
            parseCompression(compression), !noBaselines, udpMtu, TimeUnit.SECONDS.toNanos(timeoutSeconds), hybridIpcMtu);
    }

    private static BenchOp parseOp(final String text) {
        for (final BenchOp candidate : BenchOp.values()) {
            if (candidate.cliName().equals(text.toLowerCase(Locale.ROOT))) {
                return candidate;
            }
        }
        throw new IllegalArgumentException("--op=" + text + ": give one of "
            + Arrays.stream(BenchOp.values()).map(BenchOp::cliName).collect(Collectors.joining(", ")));
    }

    private static TransportBenchConfig.Backend parseBackend(final String text) {
        switch (text.toLowerCase(Locale.ROOT)) {
            case "ipc":
                return TransportBenchConfig.Backend.IPC;
            case "udp":
                return TransportBenchConfig.Backend.UDP;
            case "hybrid":
                return TransportBenchConfig.Backend.HYBRID;
            default:
                throw new IllegalArgumentException("--backend=" + text + ": give ipc, udp or hybrid");
        }
    }

    private static Fp8Format parseCompression(final String text) {
        if (text.equalsIgnoreCase("none")) {
            return null;
        }
        for (final Fp8Format format : Fp8Format.values()) {
            if (format.cliName().equalsIgnoreCase(text)) {
                return format;
            }
        }
        throw new IllegalArgumentException("--compression=" + text + ": give none, "
            + Arrays.stream(Fp8Format.values()).map(Fp8Format::cliName).collect(Collectors.joining(" or ")));
    }

    /** The worker JVM's command: this launcher again, with the run's options and the hidden worker options. */
    static List<String> workerCommand(final TransportBenchConfig config, final WorkerSpec worker) {
        final List<String> args = new ArrayList<>(List.of("bench", "transport",
            "--ranks", Integer.toString(config.ranks()),
            "--op", config.op().cliName(),
            "--sizes", config.minBytes() + "B.." + config.maxBytes() + "B",
            "--backend", config.backend().name().toLowerCase(Locale.ROOT),
            "--iters", Integer.toString(config.iterations()),
            "--warmup", Integer.toString(config.warmup()),
            "--compression", config.compression() == null ? "none" : config.compression().cliName(),
            "--udp-mtu", Integer.toString(config.udpMtuBytes()),
            "--hybrid-ipc-mtu", Integer.toString(config.hybridIpcMtuBytes()),
            "--timeout", Long.toString(TimeUnit.NANOSECONDS.toSeconds(config.timeoutNs())),
            "--worker-rank", Integer.toString(worker.rank()),
            "--worker-job-dir", worker.jobDir().toString(),
            "--worker-job-id", worker.jobId()));
        if (!config.baselines()) {
            args.add("--no-baselines");
        }
        if (!worker.udpEndpoints().isEmpty()) {
            args.add("--worker-udp-endpoints");
            args.add(String.join(",", worker.udpEndpoints()));
        }
        if (!worker.tcpPorts().isEmpty()) {
            args.add("--worker-tcp-ports");
            args.add(worker.tcpPorts().stream().map(String::valueOf).collect(Collectors.joining(",")));
        }
        return WorkerProcesses.javaCommand(WorkerProcesses.inheritedJvmFlags(), Main.class.getName(), args);
    }
}
