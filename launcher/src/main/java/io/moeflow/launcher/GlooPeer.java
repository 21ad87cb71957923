package io.moeflow.launcher;

import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import io.moeflow.launcher.report.TransportBenchChart;
import io.moeflow.transport.bench.LoopbackPorts;
import io.moeflow.transport.bench.TransportBenchConfig;
import io.moeflow.transport.bench.WorkerProcesses;

/**
 * The peer of {@code moeflow bench transport}: PyTorch's gloo all-reduce ({@code bench/torch_gloo_allreduce.py},
 * one Python process per rank over TCP loopback) over the same sizes, run right after the MoEFlow sweep
 * in the same command, and the ratios against it.
 */
final class GlooPeer {
    /** One size of gloo's sweep, as the script prints it. */
    record Row(long bytes, int iterations, double meanUs, double p50Us, double busbwGbPerS) {
    }

    private static final Pattern LINE = Pattern.compile("^gloo-allreduce bytes=(\\d+) count=\\d+ iters=(\\d+) mean_us=([\\d.]+)"
        + " p50_us=([\\d.]+) algbw_gbps=[\\d.]+ busbw_gbps=([\\d.]+)$");
    private static final Pattern VERSION = Pattern.compile("^gloo-version torch=(\\S+) ranks=\\d+$");
    /** Aims of issue 8 against gloo. */
    static final double BUSBW_AIM = 2.0;
    static final double LATENCY_AIM = 10.0;

    private GlooPeer() {
    }

    /** Why gloo cannot run with {@code python}, or null if it can. */
    static String unavailable(final Path python, final Path script) {
        if (!Files.exists(script)) {
            return script + " is missing";
        }
        if (!Files.isExecutable(python)) {
            return python + " is not an executable";
        }
        try {
            final Process p = new ProcessBuilder(python.toString(), "-c",
                "import sys, torch.distributed as d; sys.exit(0 if d.is_available() and d.is_gloo_available() else 1)")
                .redirectErrorStream(true).start();
            p.getInputStream().readAllBytes();
            if (!p.waitFor(60, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                return python + " took over 60 s to import torch";
            }
            return p.exitValue() == 0 ? null : python + " cannot import torch.distributed with gloo (apt-get install python3-torch)";
        } catch (final IOException e) {
            return python + ": " + e.getMessage();
        } catch (final InterruptedException e) {
            Thread.currentThread().interrupt();
            return "interrupted";
        }
    }

    /** Parses the script's rank-0 lines (other lines are ignored). */
    static List<Row> parse(final List<String> lines) {
        final List<Row> rows = new ArrayList<>();
        for (final String line : lines) {
            final Matcher m = LINE.matcher(line.trim());
            if (m.matches()) {
                rows.add(new Row(Long.parseLong(m.group(1)), Integer.parseInt(m.group(2)), Double.parseDouble(m.group(3)),
                    Double.parseDouble(m.group(4)), Double.parseDouble(m.group(5))));
            }
        }
        return rows;
    }

    /**
     * Runs gloo's sweep with {@code config.ranks()} processes and returns rank 0's lines.
     *
     * @throws IllegalStateException if a rank fails or the run exceeds the benchmark's timeout
     */
    static List<String> run(final Path python, final Path script, final TransportBenchConfig config) throws IOException {
        final int port = LoopbackPorts.tcpPorts(1).get(0);
        final List<List<String>> commands = new ArrayList<>();
        for (int r = 0; r < config.ranks(); r++) {
            commands.add(List.of(python.toString(), script.toString(), "--rank", Integer.toString(r), "--ranks",
                Integer.toString(config.ranks()), "--port", Integer.toString(port), "--min-bytes", Long.toString(config.minBytes()),
                "--max-bytes", Long.toString(config.maxBytes()), "--iters", Integer.toString(config.iterations())));
        }
        final Path logs = Files.createTempDirectory("moeflow-gloo-");
        final List<String> lines = new ArrayList<>();
        try (WorkerProcesses ranks = WorkerProcesses.start(commands, logs, line -> {
            synchronized (lines) {
                lines.add(line);
            }
        })) {
            final int[] codes = ranks.awaitAll(config.timeoutNs());
            if (Arrays.stream(codes).anyMatch(c -> c != 0)) {
                final StringBuilder why = new StringBuilder("gloo ranks exited with " + Arrays.toString(codes));
                for (int r = 0; r < ranks.size(); r++) {
                    why.append("; rank ").append(r).append(": ").append(ranks.tail(r, 5).replace('\n', ' '));
                }
                throw new IllegalStateException(why.toString());
            }
        } catch (final UncheckedIOException e) {
            throw e.getCause();
        } finally {
            try (java.util.stream.Stream<Path> files = Files.walk(logs)) {
                for (final Path f : files.sorted(java.util.Comparator.reverseOrder()).toList()) {
                    Files.deleteIfExists(f);
                }
            }
        }
        synchronized (lines) {
            return new ArrayList<>(lines);
        }
    }

    /** Prints gloo's rows beside ours (same sizes) and the issue's two aims. */
    static void printComparison(final List<String> glooLines, final TransportBenchChart.Report ours, final PrintStream out) {
        final List<Row> gloo = parse(glooLines);
        final String version = glooLines.stream().map(VERSION::matcher).filter(Matcher::matches).map(m -> m.group(1))
            .findFirst().orElse("?");
        out.println("#");
        out.printf(Locale.ROOT, "# gloo peer: torch.distributed all-reduce (torch %s, gloo, one process per rank, TCP loopback),"
            + " same sizes, run after the sweep above%n", version);
        out.printf(Locale.ROOT, "# %12s %11s %11s %11s %11s %11s %11s %11s %9s %9s%n", "size(B)", "gloo-time", "gloo-p50",
            "gloo-busbw", "time(us)", "p50(us)", "busbw", "off-busbw", "busbw-x", "p50-x");
        TransportBenchChart.Row oursFirst = null;
        Row glooFirst = null;
        TransportBenchChart.Row oursLast = null;
        Row glooLast = null;
        for (final Row g : gloo) {
            final TransportBenchChart.Row o = ours.rows().stream().filter(r -> r.bytes() == g.bytes()).findFirst().orElse(null);
            if (o == null) {
                continue;
            }
            if (oursFirst == null) {
                oursFirst = o;
                glooFirst = g;
            }
            oursLast = o;
            glooLast = g;
            out.printf(Locale.ROOT, "  %12d %11.2f %11.2f %11.3f %11.2f %11.2f %11.3f %11.3f %8.2fx %8.1fx%n", g.bytes(), g.meanUs(),
                g.p50Us(), g.busbwGbPerS(), o.meanUs(), o.p50Us(), o.busbwGbPerS(), o.offHeapBusbwGbPerS(),
                g.meanUs() / o.meanUs(), g.p50Us() / o.p50Us());
        }
        if (oursLast == null) {
            out.println("# gloo peer: no size in common with the sweep (gloo printed " + gloo.size() + " rows)");
            return;
        }
        out.println("# busbw-x: our float[] busbw / gloo's (= gloo's mean time / ours: the same bytes); p50-x: gloo's median"
            + " time / ours; higher is better for us");
        out.println("# aims (issue 8, against gloo in the same command):");
        final double best = Double.isNaN(oursLast.offHeapBusbwGbPerS()) ? oursLast.busbwGbPerS()
            : Math.max(oursLast.busbwGbPerS(), oursLast.offHeapBusbwGbPerS());
        out.printf(Locale.ROOT, "#   %d B busbw: float[] %.3f, off-heap %.3f, gloo %.3f GB/s = %.2fx gloo (aim >= %.0fx: %s)%n",
            oursLast.bytes(), oursLast.busbwGbPerS(), oursLast.offHeapBusbwGbPerS(), glooLast.busbwGbPerS(),
            best / glooLast.busbwGbPerS(), BUSBW_AIM, best >= BUSBW_AIM * glooLast.busbwGbPerS() ? "met" : "NOT met");
        out.printf(Locale.ROOT, "#   %d B latency: p50 %.1f us (mean %.1f us), gloo p50 %.1f us (mean %.1f us) = %.1fx lower"
                + " (aim >= %.0fx: %s)%n", oursFirst.bytes(), oursFirst.p50Us(), oursFirst.meanUs(), glooFirst.p50Us(),
            glooFirst.meanUs(), glooFirst.p50Us() / oursFirst.p50Us(), LATENCY_AIM,
            glooFirst.p50Us() >= LATENCY_AIM * oursFirst.p50Us() ? "met" : "NOT met");
    }
}
