package io.moeflow.launcher;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

@Timeout(300)
class TrainCommandTest {
    @TempDir
    Path runs;

    @Test
    void shouldWriteTheRunDirectoryWithMetricsChartsAndEvaluation() throws IOException {
        final CliRun run = train("first", "--steps", "12");
        assertEquals(0, run.exitCode(), run.err());
        final Path dir = runs.resolve("first");
        for (final String file : List.of("config.properties", "metrics.jsonl", "loss.png", "expert-load.png", "eval.json")) {
            assertTrue(Files.size(dir.resolve(file)) > 0, file + " should exist and not be empty");
        }
        assertTrue(isPng(dir.resolve("loss.png")) && isPng(dir.resolve("expert-load.png")), "charts must be PNG files");

        final List<String> lines = Files.readAllLines(dir.resolve("metrics.jsonl"));
        assertEquals(12, lines.size(), "one metrics line per step");
        final JsonFactory json = new JsonFactory();
        for (int i = 0; i < lines.size(); i++) {
            try (JsonParser p = json.createParser(lines.get(i))) {
                assertEquals(JsonToken.START_OBJECT, p.nextToken());
                int fields = 0;
                while (p.nextToken() == JsonToken.FIELD_NAME) {
                    final String name = p.currentName();
                    p.nextToken();
                    if (name.equals("step")) {
                        assertEquals(i + 1, p.getLongValue());
                    }
                    if (List.of("step", "loss", "aux_loss", "lr", "stage", "grad_norm", "tokens_per_s", "expert_load")
                        .contains(name)) {
                        fields++;
                    }
                    p.skipChildren();
                }
                assertEquals(8, fields, "line " + (i + 1) + " must carry every required field: " + lines.get(i));
            }
        }
        assertTrue(run.out().contains("domain") && run.out().contains("arith"), "per-domain evaluation printed");
        assertTrue(run.out().contains("samples (greedy"), "generated samples printed");
        assertTrue(run.out().contains("parameters"), "parameter counts printed");
    }

    @Test
    void shouldListStageRatesInTheHeaderOnlyWhenTheScheduleUsesThem() {
        final CliRun staged = train("staged", "--steps", "2", "--eval-samples", "0", "--samples", "0");
        assertEquals(0, staged.exitCode(), staged.err());
        assertTrue(staged.out().contains("learning rate: each stage's own rate"), staged.out());
        assertTrue(staged.out().lines().anyMatch(l -> l.startsWith("  stage basic") && l.contains(" lr ")), staged.out());

        final CliRun constant = train("constant", "--steps", "2", "--eval-samples", "0", "--samples", "0",
            "--lr-schedule", "constant", "--lr", "0.002");
        assertEquals(0, constant.exitCode(), constant.err());
        assertTrue(constant.out().contains("learning rate: constant 0.002"), constant.out());
        assertTrue(constant.out().lines().filter(l -> l.startsWith("  stage basic")).noneMatch(l -> l.contains(" lr ")),
            "stage rates are not used under --lr-schedule constant: " + constant.out());
    }

    @Test
    void shouldLogTheLeftoversOfAnInterruptedSaveItRemoves() throws IOException {
        // a half-written checkpoint of a process that is gone (no pid is this large on Linux)
        final Path leftover = runs.resolve("left/checkpoints/step-00000005.tmp-2147483646");
        Files.createDirectories(leftover);
        final CliRun run = train("left", "--steps", "2", "--eval-samples", "0", "--samples", "0", "--resume", "auto");
        assertEquals(0, run.exitCode(), run.err());
        assertTrue(Files.notExists(leftover), "the leftover should be removed");
        assertTrue(run.out().contains("checkpoint: removed " + leftover), run.out());
    }

    @Test
    void shouldRunTheSameTrainingAgainFromTheSavedConfig() throws IOException {
        assertEquals(0, train("original", "--steps", "6", "--seed", "11").exitCode());
        final Path saved = runs.resolve("original/config.properties");
        final CliRun again = CliRun.of("train", "--config", saved.toString(), "--run-name", "again",
            "--runs-dir", runs.toString());
        assertEquals(0, again.exitCode(), again.err());
        assertArrayEquals(losses(runs.resolve("original/metrics.jsonl")), losses(runs.resolve("again/metrics.jsonl")),
            "the saved config.properties must reproduce the run exactly");
    }

    @Test
    void shouldTakeOptionsFromAConfigFileButLetTheCommandLineWin() throws IOException {
        final Path config = runs.resolve("job.properties");
        Files.writeString(config, "steps=3\nseed=5\n");
        final CliRun run = CliRun.of(CliRun.concat(CliRun.concat(new String[] {"train"}, CliRun.TINY),
            "--config", config.toString(), "--steps", "4", "--run-name", "cfg", "--runs-dir", runs.toString()));
        assertEquals(0, run.exitCode(), run.err());
        assertEquals(4, Files.readAllLines(runs.resolve("cfg/metrics.jsonl")).size(), "--steps on the command line wins");
        assertTrue(Files.readString(runs.resolve("cfg/config.properties")).contains("seed=5"), "seed came from the file");
    }

    @Test
    void shouldRejectBadOptionsWithOneClearLine() {
        assertBad(train("bad1", "--steps", "0"), "steps=0");
        assertBad(train("bad2", "--heads", "3"), "heads=3 must divide channels=32");
        assertBad(train("bad3", "--stage", "basic:0:0.3"), "expected NAME:MIN:MAX:LENGTH:LR");
        assertBad(train("bad4", "--data", runs.resolve("missing.jsonl").toString()), "missing.jsonl");
        assertBad(train("bad 5"), "--run-name");
        assertBad(CliRun.of("train", "--config", runs.resolve("nope.properties").toString()), "nope.properties");
    }

    @Test
    void shouldLeaveNoRunDirectoryBehindWhenTheSettingsAreRejected() {
        assertBad(train("mismatch", "--curriculum", "none", "--lr-schedule", "curriculum"), "--lr-schedule");
        assertTrue(!Files.exists(runs.resolve("mismatch")), "a refused run must not leave its directory behind");
        assertEquals(0, train("mismatch", "--curriculum", "none", "--lr-schedule", "constant", "--steps", "2").exitCode(),
            "the same --run-name works once the settings are fixed");
    }

    @Test
    void shouldRefuseToOverwriteAnExistingRun() {
        assertEquals(0, train("taken", "--steps", "2").exitCode());
        assertBad(train("taken", "--steps", "2"), "already exists");
    }

    private CliRun train(final String name, final String... extra) {
        return CliRun.of(CliRun.concat(CliRun.concat(new String[] {"train"}, CliRun.TINY),
            CliRun.concat(new String[] {"--run-name", name, "--runs-dir", runs.toString()}, extra)));
    }

    private static void assertBad(final CliRun run, final String expected) {
        assertEquals(2, run.exitCode(), "exit code for bad input; stderr: " + run.err());
        assertTrue(run.err().contains(expected), "stderr should say '" + expected + "': " + run.err());
        assertTrue(!run.err().contains("\tat "), "no stack trace for bad input: " + run.err());
    }

    private static double[] losses(final Path metrics) throws IOException {
        return Files.readAllLines(metrics).stream().mapToDouble(l -> {
            final int i = l.indexOf("\"loss\":") + 7;
            return Double.parseDouble(l.substring(i, l.indexOf(',', i)));
        }).toArray();
    }

    private static boolean isPng(final Path file) throws IOException {
        final byte[] head = Files.readAllBytes(file);
        return head.length > 8 && head[1] == 'P' && head[2] == 'N' && head[3] == 'G';
    }
}
