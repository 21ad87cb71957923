package io.moeflow.launcher;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import io.moeflow.curriculum.CurriculumConfig;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

@Timeout(600)
class StudyCurriculumCommandTest {
    @TempDir
    Path out;

    @Test
    void shouldFindTheFirstEvaluationAtOrBelowTheTarget() {
        final List<double[]> curve = List.of(new double[] {10, 3.0}, new double[] {20, 2.5}, new double[] {30, 2.6},
            new double[] {40, 2.0});
        assertEquals(20, StudyCurriculumCommand.stepsToTarget(curve, 2.5));
        assertEquals(40, StudyCurriculumCommand.stepsToTarget(curve, 2.4));
        assertTrue(Double.isNaN(StudyCurriculumCommand.stepsToTarget(curve, 1.9)));
    }

    @Test
    void shouldReportMeanAndSampleStandardDeviation() {
        assertEquals(2.0, StudyCurriculumCommand.mean(new double[] {1, 2, 3}));
        assertEquals(1.0, StudyCurriculumCommand.sd(new double[] {1, 2, 3}), 1e-12);
        assertEquals(0.0, StudyCurriculumCommand.sd(new double[] {5}));
    }

    @Test
    void shouldTabulateStepsTokensLossAndAccuracyPerSchedule() {
        final Map<CurriculumConfig.Kind, List<StudyCurriculumCommand.RunResult>> results = new LinkedHashMap<>();
        results.put(CurriculumConfig.Kind.STAGED, List.of(
            new StudyCurriculumCommand.RunResult(List.of(new double[] {10, 2.0}, new double[] {20, 1.5}), 1.5,
                Map.of("copy", 0.5)),
            new StudyCurriculumCommand.RunResult(List.of(new double[] {10, 1.8}, new double[] {20, 1.7}), 1.7,
                Map.of("copy", 0.7))));
        results.put(CurriculumConfig.Kind.NONE, List.of(
            new StudyCurriculumCommand.RunResult(List.of(new double[] {10, 2.5}, new double[] {20, 2.2}), 2.2,
                Map.of("copy", 0.1))));
        final String table = StudyCurriculumCommand.table(results, 1.9, 1000, List.of("copy", "text"));
        final String staged = table.lines().filter(l -> l.startsWith("staged")).findFirst().orElseThrow();
        assertTrue(staged.contains("15 +- 7 (2/2)"), staged);  // reached at steps 20 and 10
        assertTrue(staged.contains(" 0.02 "), staged);         // 15 steps x 1000 tokens = 0.015 M
        assertTrue(staged.contains("1.6000 +- 0.1414"), staged);
        assertTrue(staged.contains("60.0 +- 14.1"), staged);
        final String uniform = table.lines().filter(l -> l.startsWith("uniform")).findFirst().orElseThrow();
        assertTrue(uniform.contains("not reached"), uniform);
        assertTrue(!table.lines().findFirst().orElseThrow().contains("text") && !table.contains(" text "),
            "a domain without answers gets no column: " + table);
    }

    @Test
    void shouldRunEveryScheduleAndWriteTheTableAndChart() throws IOException {
        final CliRun run = CliRun.of("study", "curriculum", "--scale", "0.025", "--seeds", "1", "--eval-samples", "2",
            "--seq-len", "32", "--channels", "32", "--layers", "1", "--heads", "2", "--experts", "4",
            "--expert-hidden", "64", "--samples-per-domain", "200", "--threads", "2", "--out", out.toString());
        assertEquals(0, run.exitCode(), run.err());
        for (final String schedule : List.of("staged", "fixed_linear", "fixed_root", "uniform", "epoch-shuffle")) {
            assertTrue(run.out().lines().anyMatch(l -> l.startsWith(schedule + " ")), schedule + " row: " + run.out());
        }
        assertTrue(Files.readString(out.resolve("study.txt")).contains("target held-out loss"));
        final byte[] png = Files.readAllBytes(out.resolve("curriculum-study.png"));
        assertTrue(png.length > 8 && png[1] == 'P' && png[2] == 'N' && png[3] == 'G', "a PNG chart");
    }
}
