package io.moeflow.launcher;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.File;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import io.moeflow.checkpoint.CheckpointConfig;
import io.moeflow.checkpoint.CheckpointFile;
import io.moeflow.checkpoint.CheckpointLayout;
import io.moeflow.checkpoint.CheckpointWriter;
import io.moeflow.checkpoint.RunMetadata;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** Checkpoints through the CLI: resume, a real crash in the middle of a save, inspect, eval, generate. */
@Timeout(300)
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class CheckpointCommandsTest {
    private static final String[] RUN = {"--steps", "8", "--save-every", "4", "--eval-samples", "0", "--samples", "0"};

    @TempDir
    static Path runs;

    /** Metrics of an uninterrupted 8-step run, the reference every resumed run must reproduce. */
    private List<String> reference;

    @BeforeAll
    void trainReference() throws IOException {
        final CliRun first = train("reference");
        assertEquals(0, first.exitCode(), first.err());
        reference = lossesOf("reference");
        assertEquals(8, reference.size());
    }

    @Test
    void shouldResumeAutoWithTheRunsSavedOptionsAndReproduceTheUninterruptedRun() throws IOException {
        assertEquals(0, train("resumed").exitCode());
        // As if the run had died after step 4: its newest checkpoint and the later metrics lines are gone.
        deleteTree(runs.resolve("resumed/checkpoints/step-00000008"));
        final CliRun resumed = CliRun.of("train", "--run-name", "resumed", "--runs-dir", runs.toString(), "--resume",
            "auto");
        assertEquals(0, resumed.exitCode(), resumed.err());
        assertTrue(resumed.out().contains("continuing from") && resumed.out().contains("(step 4)"), resumed.out());
        assertEquals(reference, lossesOf("resumed"), "steps 1-4 kept, 5-8 redone: identical to the uninterrupted run");
    }

    @Test
    @Tag("slow")
    void shouldResumeFromThePreviousCheckpointAfterTheProcessIsKilledInTheMiddleOfASave() throws Exception {
        final List<String> command = new ArrayList<>(List.of(javaBin()));
        command.addAll(List.of(System.getProperty("moeflow.jvm.flags", "").split(" ")));
        command.addAll(List.of("-cp", System.getProperty("java.class.path"), Main.class.getName()));
        command.addAll(trainArgs("killed"));
        command.addAll(List.of("--async-save", "false", "--fault-at", "BEFORE_RENAME:8"));
        final Process child = new ProcessBuilder(command).redirectErrorStream(true)
            .redirectOutput(runs.resolve("killed.log").toFile()).start();
        try {
            assertTrue(child.waitFor(240, TimeUnit.SECONDS), "the child JVM should halt at the fault");
        } finally {
            child.destroyForcibly();
        }
        assertEquals(FaultAt.HALT_STATUS, child.exitValue(), Files.readString(runs.resolve("killed.log")));
        assertFalse(Files.exists(runs.resolve("killed/checkpoints/step-00000008")), "the killed save never committed");

        final CliRun resumed = CliRun.of("train", "--run-name", "killed", "--runs-dir", runs.toString(), "--resume",
            "auto");
        assertEquals(0, resumed.exitCode(), resumed.err());
        assertTrue(resumed.out().contains("(step 4)"), resumed.out());
        assertEquals(reference, lossesOf("killed"), "the resumed run must match the uninterrupted one bit for bit");
    }

    @Test
    void shouldExtendAFinishedRunKeepingItsStagesAtTheirAbsoluteSteps() throws IOException {
        assertEquals(0, train("extended").exitCode());
        final CliRun extended = CliRun.of("train", "--run-name", "extended", "--runs-dir", runs.toString(), "--resume",
            "auto", "--steps", "16");
        assertEquals(0, extended.exitCode(), extended.err());
        assertTrue(extended.out().contains("extending the run to 16 steps; it was planned for 8"), extended.out());
        assertEquals(16, lossesOf("extended").size(), "steps 9-16 ran");
        assertEquals(reference, lossesOf("extended").subList(0, 8));

        // The same 16 steps in one go, planned for 8: bit for bit what stopping at 8 and extending produced.
        final List<String> planned = trainArgs("planned-for-8");
        planned.addAll(List.of("--steps", "16", "--plan-steps", "8"));
        assertEquals(0, CliRun.of(planned.toArray(new String[0])).exitCode());
        assertEquals(lossesOf("planned-for-8"), lossesOf("extended"));
        assertTrue(Files.readString(runs.resolve("extended/config.properties")).contains("plan-steps=8"),
            "the plan is recorded, so a further extension keeps it too");
    }

    @Test
    void shouldKeepLoweringTheLossWhenARunIsExtended() throws IOException {
        final String[] constantLr = {"--curriculum", "NONE", "--lr-schedule", "CONSTANT", "--lr", "3e-3"};
        final List<String> args = trainArgs("longer");
        args.addAll(List.of(constantLr));
        args.addAll(List.of("--steps", "40"));
        assertEquals(0, CliRun.of(args.toArray(new String[0])).exitCode());
        final CliRun extended = CliRun.of("train", "--run-name", "longer", "--runs-dir", runs.toString(), "--resume",
            "auto", "--steps", "80");
        assertEquals(0, extended.exitCode(), extended.err());
        final List<String> losses = lossesOf("longer");
        assertEquals(80, losses.size());
        final double before = meanLoss(losses.subList(30, 40));
        final double after = meanLoss(losses.subList(70, 80));
        assertTrue(after < before, "mean loss of steps 71-80 (" + after + ") below that of steps 31-40 (" + before + ")");
    }

    private static double meanLoss(final List<String> fields) {
        return fields.stream().mapToDouble(f -> Double.parseDouble(f.substring(f.indexOf(':') + 1))).average()
            .orElseThrow();
    }

    @Test
    void shouldRefuseASecondTrainOnARunThatIsBeingWritten() throws IOException {
        assertEquals(0, train("busy").exitCode());
        final Path checkpoints = runs.resolve("busy/checkpoints");
        final long metricsBytes = Files.size(runs.resolve("busy/metrics.jsonl"));
        // Another writer (here: in this JVM) holds the run's checkpoints directory.
        try (CheckpointWriter other = new CheckpointWriter(CheckpointConfig.defaults(checkpoints),
            CheckpointLayout.builder().int64(CheckpointFile.STATE, "x").build(),
            RunMetadata.of("test", "test", null, 1))) {
            final CliRun second = CliRun.of("train", "--run-name", "busy", "--runs-dir", runs.toString(), "--resume",
                "auto");
            assertBadWithoutTrace(second);
            assertTrue(second.err().contains("another checkpoint writer is using this directory")
                && second.err().contains(checkpoints.toString()), second.err());
        }
        assertEquals(metricsBytes, Files.size(runs.resolve("busy/metrics.jsonl")), "the refused run changed nothing");
    }

    @Test
    void shouldInspectEvaluateAndGenerateFromACheckpoint() {
        final String checkpoint = runs.resolve("reference/checkpoints/step-00000008").toString();
        final CliRun inspect = CliRun.of("inspect", checkpoint);
        assertEquals(0, inspect.exitCode(), inspect.err());
        assertTrue(inspect.out().contains("step:       8") && inspect.out().contains("every checksum verified"), inspect.out());
        assertTrue(inspect.out().contains("blocks.0.moe.experts.3.w1.weight") && inspect.out().contains("[64, 32]"),
            "expert weights listed with their [F, C] shape: " + inspect.out());

        final CliRun eval = CliRun.of("eval", "--checkpoint", runs.resolve("reference").toString(), "--eval-samples", "5");
        assertEquals(0, eval.exitCode(), eval.err());
        assertTrue(eval.out().contains("arith") && eval.out().contains("held-out"), eval.out());

        final CliRun generate = CliRun.of("generate", "--checkpoint", checkpoint, "--prompt", "1+1=", "--max-tokens", "7",
            "--temperature", "0");
        assertEquals(0, generate.exitCode(), generate.err());
        assertTrue(generate.out().startsWith("1+1="), generate.out());
        final CliRun again = CliRun.of("generate", "--checkpoint", checkpoint, "--prompt", "1+1=", "--max-tokens", "7",
            "--temperature", "0");
        assertEquals(generate.out(), again.out(), "greedy generation is deterministic");
    }

    @Test
    void shouldReportACorruptCheckpointByFileAndDataset() throws IOException {
        assertEquals(0, train("corrupt").exitCode());
        final Path model = runs.resolve("corrupt/checkpoints/step-00000008/model.h5");
        try (RandomAccessFile f = new RandomAccessFile(model.toFile(), "rw")) {
            final long at = f.length() - 64; // inside the last dataset's data
            f.seek(at);
            final int b = f.read();
            f.seek(at);
            f.write(b ^ 0x5a);
        }
        final CliRun inspect = CliRun.of("inspect", model.getParent().toString());
        assertEquals(2, inspect.exitCode());
        assertTrue(inspect.err().contains("model.h5") && inspect.err().contains("checksum"), inspect.err());
        assertBadWithoutTrace(inspect);
        assertBadWithoutTrace(CliRun.of("generate", "--checkpoint", runs.resolve("nothing-here").toString()));
    }

    private static void assertBadWithoutTrace(final CliRun run) {
        assertEquals(2, run.exitCode(), run.err());
        assertFalse(run.err().contains("\tat "), "one clear line, no stack trace: " + run.err());
    }

    private CliRun train(final String name) {
        return CliRun.of(trainArgs(name).toArray(new String[0]));
    }

    private List<String> trainArgs(final String name) {
        final List<String> args = new ArrayList<>(List.of("train"));
        args.addAll(List.of(CliRun.TINY));
        args.addAll(List.of(RUN));
        args.addAll(List.of("--run-name", name, "--runs-dir", runs.toString()));
        return args;
    }

    /** The loss field of each metrics line, as text: equal text means equal bits. */
    private List<String> lossesOf(final String run) throws IOException {
        final List<String> losses = new ArrayList<>();
        for (final String line : Files.readAllLines(runs.resolve(run).resolve("metrics.jsonl"))) {
            final int i = line.indexOf("\"loss\":");
            losses.add(line.substring(i, line.indexOf(',', i)));
        }
        return losses;
    }

    private static String javaBin() {
        return System.getProperty("java.home") + File.separator + "bin" + File.separator + "java";
    }

    private static void deleteTree(final Path dir) throws IOException {
        try (Stream<Path> all = Files.walk(dir)) {
            for (final Path p : (Iterable<Path>) all.sorted(Comparator.reverseOrder())::iterator) {
                Files.delete(p);
            }
        }
    }
}
