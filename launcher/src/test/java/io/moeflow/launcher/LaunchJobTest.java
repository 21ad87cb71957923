package io.moeflow.launcher;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import io.moeflow.checkpoint.CheckpointFile;
import io.moeflow.checkpoint.CheckpointReader;
import io.moeflow.checkpoint.CheckpointStore;
import io.moeflow.checkpoint.Resolution;
import io.moeflow.checkpoint.TensorSpec;
import io.moeflow.launcher.launch.NodeAgent;
import io.moeflow.transport.bench.JobDirectory;
import io.moeflow.transport.bench.WorkerProcesses;

/** {@code moeflow launch} with real worker JVMs (2 each, short runs): training, restart, and what is left after failures. */
@Tag("slow")
@Timeout(value = 600, unit = TimeUnit.SECONDS)
class LaunchJobTest {
    /** The tiny model, one compute thread per worker (the machine has two cores). */
    private static final String[] TINY = CliRun.concat(CliRun.TINY, "--threads", "1");
    private static final Pattern WORKER_PID = Pattern.compile("rank \\d+ of \\d+, launched, pid (\\d+)");

    @TempDir
    Path runs;

    private String[] launch(final String name, final String... extra) {
        final List<String> args = new ArrayList<>(List.of("launch", "--nproc-per-node", "2"));
        int i = 0;
        while (i < extra.length && !extra[i].equals("train")) {
            args.add(extra[i++]);
        }
        args.add("train");
        args.addAll(List.of(TINY));
        args.addAll(List.of("--run-name", name, "--runs-dir", runs.toString()));
        for (i++; i < extra.length; i++) {
            args.add(extra[i]);
        }
        return args.toArray(new String[0]);
    }

    @Test
    void shouldTrainOneModelWithTwoWorkerJvmsLikeOneProcess() throws IOException {
        final CliRun launched = CliRun.of(launch("dp", "train", "--steps", "20"));
        assertEquals(0, launched.exitCode(), launched.out() + launched.err());
        final Path dir = runs.resolve("dp");
        final String out = launched.out();
        assertTrue(out.contains("[rank 0] moeflow train: run " + dir + " (rank 0 of 2, launched"), out);
        assertTrue(out.contains("step 20/20 (100%)"), "the launcher's progress line reached the last step: " + out);
        assertTrue(out.contains("moeflow launch: all 2 ranks finished"), out);
        assertFalse(out.contains("[rank 1]"), "only rank 0 is echoed by default");
        assertTrue(Files.readString(dir.resolve("rank-1.log")).contains("(rank 1 of 2, launched"), "rank 1 logged to its file");
        for (final String file : List.of("config.properties", "metrics.jsonl", "loss.png", "eval.json", "rank-0.log")) {
            assertTrue(Files.size(dir.resolve(file)) > 0, file + " written");
        }
        assertEquals(20, Files.readAllLines(dir.resolve("metrics.jsonl")).size(), "one metrics line per step, written once");
        assertTrue(shmDirectoriesOf(ProcessHandle.current().pid()).isEmpty(), "the job's /dev/shm directory is gone");

        // The same options in one process: the global batch is the same, so the model is too (up to summation order).
        final CliRun single = CliRun.of(trainArgs("one", "--steps", "20"));
        assertEquals(0, single.exitCode(), single.err());
        // Step 1's gradient norm is taken after the all-reduce: equal to the one-process gradient's up to summation order
        // only if both ranks trained on their halves of the same global batch and averaged. (Later steps drift apart by
        // Adam's sign flips on near-zero gradients; trainer/DataParallelEquivalenceTest holds those to a tolerance.)
        final double[] launchedNorms = column(runs.resolve("dp"), "grad_norm");
        final double[] singleNorms = column(runs.resolve("one"), "grad_norm");
        assertEquals(20, launchedNorms.length);
        assertEquals(singleNorms[0], launchedNorms[0], 1e-5 * singleNorms[0], "step 1's job-wide gradient norm");
        final double[] launchedLoss = column(runs.resolve("dp"), "ce_loss");
        final double[] singleLoss = column(runs.resolve("one"), "ce_loss");
        assertEquals(singleLoss[19], launchedLoss[19], 0.05, "the same model after 20 steps (rank 0's half-batch loss)");
    }

    /** One field of every line of the run's metrics.jsonl. */
    private static double[] column(final Path run, final String field) throws IOException {
        final Pattern value = Pattern.compile("\"" + field + "\":([-0-9.eE]+)");
        return Files.readAllLines(run.resolve("metrics.jsonl")).stream().mapToDouble(line -> {
            final Matcher m = value.matcher(line);
            assertTrue(m.find(), field + " in " + line);
            return Double.parseDouble(m.group(1));
        }).toArray();
    }

    @Test
    void shouldLeaveNoWorkerAndNoSharedMemoryWhenTheLauncherIsKilled() throws Exception {
        final List<String> command = WorkerProcesses.javaCommand(WorkerProcesses.inheritedJvmFlags(), Main.class.getName(),
            List.of(launch("killed", "train", "--steps", "1000000", "--save-every", "0", "--eval-every", "0")));
        final Path log = runs.resolve("launcher.log");
        final Process launcher = new ProcessBuilder(command).redirectErrorStream(true).redirectOutput(log.toFile()).start();
        try {
            final Path dir = runs.resolve("killed");
            await(() -> contains(dir.resolve("rank-0.log"), "training:") && contains(dir.resolve("rank-1.log"), "training:"), 180,
                "both workers joined and are training");
            final List<ProcessHandle> workers = launcher.descendants().toList();
            assertTrue(workers.size() >= 2, "two worker JVMs: " + workers);
            final List<Path> shm = shmDirectoriesOf(launcher.pid());
            assertEquals(1, shm.size(), "the job's directory under /dev/shm, owned by the launcher: " + shm);

            launcher.destroyForcibly(); // SIGKILL: no shutdown hook runs in the launcher
            await(() -> workers.stream().noneMatch(ProcessHandle::isAlive), 20, "every worker JVM exits");
            await(() -> !Files.exists(shm.get(0)), 10, "the workers' watchdog removes " + shm.get(0));
        } finally {
            launcher.descendants().forEach(ProcessHandle::destroyForcibly);
            launcher.destroyForcibly();
        }
    }

    @Test
    void shouldStopEveryRankAfterTheSameStepWithACheckpointWhenTheLauncherGetsSigterm() throws Exception {
        final List<String> command = WorkerProcesses.javaCommand(WorkerProcesses.inheritedJvmFlags(), Main.class.getName(),
            List.of(launch("stopped", "--max-restarts", "3", "train", "--steps", "1000000", "--save-every", "0", "--eval-every", "0")));
        final Path log = runs.resolve("launcher.log");
        final Process launcher = new ProcessBuilder(command).redirectErrorStream(true).redirectOutput(log.toFile()).start();
        try {
            final Path dir = runs.resolve("stopped");
            await(() -> contains(log, "step 1/1000000"), 180, "the job trains");
            final List<ProcessHandle> workers = launcher.descendants().toList();
            launcher.destroy(); // SIGTERM, as Ctrl-C or a scheduler would send
            assertTrue(launcher.waitFor(120, TimeUnit.SECONDS), "the launcher exits after the workers saved");
            final String out = Files.readString(log);
            assertTrue(out.contains("moeflow launch: stopped by a signal"), out);
            assertTrue(out.contains("continue with: ./moeflow launch --nproc-per-node 2 train --run-name stopped"), out);
            assertTrue(Files.readString(dir.resolve("rank-1.log")).contains("continue with: ./moeflow launch --nproc-per-node 2 train"),
                "a launched worker names the launch command to continue");
            assertFalse(out.contains("restarting"), "a stop is not a failure to restart: " + out);
            final Matcher stop0 = Pattern.compile("stopped at step (\\d+)").matcher(Files.readString(dir.resolve("rank-0.log")));
            final Matcher stop1 = Pattern.compile("stopped at step (\\d+)").matcher(Files.readString(dir.resolve("rank-1.log")));
            assertTrue(stop0.find() && stop1.find(), "both ranks say where they stopped");
            assertEquals(stop0.group(1), stop1.group(1), "every rank stops after the same step");
            final Resolution newest = new CheckpointStore(dir.resolve("checkpoints")).resolveAuto().orElseThrow();
            try (CheckpointReader reader = CheckpointReader.open(newest.directory())) {
                assertEquals(Long.parseLong(stop0.group(1)), reader.step(), "the checkpoint of the step they stopped after");
            }
            await(() -> workers.stream().noneMatch(ProcessHandle::isAlive), 20, "every worker JVM exits");
            assertTrue(shmDirectoriesOf(launcher.pid()).isEmpty(), "no /dev/shm directory left");
        } finally {
            launcher.descendants().forEach(ProcessHandle::destroyForcibly);
            launcher.destroyForcibly();
        }
    }

    @Test
    void shouldNameTheRankThatNeverJoinsWithinTheJoinTimeout() throws IOException {
        final long startNs = System.nanoTime();
        final CliRun run = CliRun.of(launch("nojoin", "--join-timeout", "20", "--test-never-join", "1", "--max-restarts", "2", "train",
            "--steps", "5"));
        final long seconds = TimeUnit.NANOSECONDS.toSeconds(System.nanoTime() - startNs);
        assertEquals(3, run.exitCode(), run.out() + run.err());
        assertTrue(run.out().contains("moeflow launch: rank(s) [1] did not join the rendezvous within 20 s (see rank-1.log in "), run.out());
        assertFalse(run.out().contains("restarting"), "a worker that never joins is not restarted");
        assertTrue(seconds < 120, "reported soon after the timeout, took " + seconds + " s");
        assertTrue(ProcessHandle.current().children().noneMatch(p -> p.info().commandLine().orElse("").contains("nojoin")),
            "no worker JVM left");
        assertTrue(shmDirectoriesOf(ProcessHandle.current().pid()).isEmpty(), "no /dev/shm directory left");
    }

    /** Data parallel (every rank holds everything) and expert parallel (each rank holds half the experts: sharded state). */
    @ParameterizedTest(name = "expert parallel {0}")
    @ValueSource(ints = {1, 2})
    void shouldFinishBitwiseLikeAnUninterruptedRunAfterAWorkerIsKilled(final int expertParallel) throws Exception {
        final String[] options = {"--steps", "200", "--save-every", "40", "--eval-every", "0", "--eval-samples", "0", "--samples", "0",
            "--expert-parallel", Integer.toString(expertParallel)};
        final CliRun straight = CliRun.of(launch("straight", concat(new String[] {"train"}, options)));
        assertEquals(0, straight.exitCode(), straight.out() + straight.err());

        final Path dir = runs.resolve("restarted");
        final CompletableFuture<CliRun> run = CompletableFuture.supplyAsync(
            () -> CliRun.of(launch("restarted", concat(new String[] {"--max-restarts", "1", "train"}, options))));
        await(() -> new CheckpointStore(dir.resolve("checkpoints")).resolveAuto().isPresent() || run.isDone(), 300,
            "the first checkpoint");
        assertFalse(run.isDone(), "the run was still going when its first checkpoint appeared");
        final long pid = workerPid(dir.resolve("rank-1.log"));
        ProcessHandle.of(pid).orElseThrow().destroyForcibly(); // SIGKILL rank 1
        final CliRun restarted = run.get(300, TimeUnit.SECONDS);
        assertEquals(0, restarted.exitCode(), restarted.out() + restarted.err());
        assertTrue(restarted.out().contains("moeflow launch: rank 1 failed: killed by SIGKILL (exit code 137); restarting the group"),
            restarted.out());
        assertTrue(restarted.out().contains("[rank 0] resume: continuing from "), "the restart resumed from a checkpoint: " + restarted.out());

        int compared = 0;
        for (final CheckpointFile file : CheckpointFile.values()) {
            final Map<String, Object> a = allTensors(runs.resolve("straight"), file);
            final Map<String, Object> b = allTensors(dir, file);
            assertEquals(a.keySet(), b.keySet());
            for (final String name : a.keySet()) {
                assertTrue(Objects.deepEquals(a.get(name), b.get(name)), file + " " + name + " differs from the uninterrupted run");
                compared++;
            }
        }
        assertTrue(compared > 10, "compared " + compared + " tensors");
    }

    private String[] trainArgs(final String name, final String... extra) {
        final List<String> args = new ArrayList<>(List.of("train"));
        args.addAll(List.of(TINY));
        args.addAll(List.of("--run-name", name, "--runs-dir", runs.toString()));
        args.addAll(List.of(extra));
        return args.toArray(new String[0]);
    }

    private static String[] concat(final String[] a, final String[] b) {
        return CliRun.concat(a, b);
    }

    /** Every tensor of the run's newest checkpoint by name, as a float[], double[] or long[]. */
    static Map<String, Object> allTensors(final Path run, final CheckpointFile file) {
        final Resolution newest = new CheckpointStore(run.resolve("checkpoints")).resolveAuto().orElseThrow();
        final Map<String, Object> all = new TreeMap<>();
        try (CheckpointReader reader = CheckpointReader.open(newest.directory())) {
            for (final TensorSpec t : reader.tensors(file)) {
                final int n = (int) Arrays.stream(t.shape()).reduce(1, (x, y) -> x * y);
                switch (t.dtype()) {
                    case FLOAT32 -> all.put(t.name(), reader.float32(file, t.name()));
                    case FLOAT64 -> {
                        final double[] d = new double[n];
                        reader.readFloat64(file, t.name(), d, 0);
                        all.put(t.name(), d);
                    }
                    case INT64 -> {
                        final long[] l = new long[n];
                        reader.readInt64(file, t.name(), l, 0);
                        all.put(t.name(), l);
                    }
                    default -> {
                        final int[] i = new int[n];
                        reader.readInt32(file, t.name(), i, 0);
                        all.put(t.name(), i);
                    }
                }
            }
        }
        return all;
    }

    private static long workerPid(final Path log) throws IOException {
        final Matcher m = WORKER_PID.matcher(Files.readString(log, StandardCharsets.UTF_8));
        assertTrue(m.find(), "the worker's pid in " + log);
        return Long.parseLong(m.group(1));
    }

    static boolean contains(final Path file, final String text) {
        try {
            return Files.isRegularFile(file) && Files.readString(file, StandardCharsets.UTF_8).contains(text);
        } catch (final IOException e) {
            return false;
        }
    }

    /** The job directories under /dev/shm whose owner file names {@code pid}. */
    static List<Path> shmDirectoriesOf(final long pid) throws IOException {
        final List<Path> found = new ArrayList<>();
        try (DirectoryStream<Path> dirs = Files.newDirectoryStream(NodeAgent.SHARED_MEMORY, NodeAgent.JOB_DIR_PREFIX + "*")) {
            for (final Path d : dirs) {
                final Path owner = d.resolve(JobDirectory.OWNER_FILE);
                if (Files.isRegularFile(owner) && Files.readString(owner).trim().equals(Long.toString(pid))) {
                    found.add(d);
                }
            }
        }
        return found;
    }

    static void await(final BooleanSupplier condition, final long seconds, final String what) throws InterruptedException {
        final long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() - deadline > 0) {
                throw new AssertionError(what + ": not within " + seconds + " s");
            }
            Thread.sleep(100);
        }
    }
}
