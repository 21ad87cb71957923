package io.moeflow.curriculum;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.lang.management.ManagementFactory;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class CurriculumSchedulerTest {
    private static final Dataset GRADED = TestData.graded(1000);

    private static CurriculumScheduler scheduler(final CurriculumConfig config, final int b, final int t) {
        return new CurriculumScheduler(config, GRADED, b, t);
    }

    @Test
    void shouldSwitchStagesAfterTheirLengthInSteps() {
        final List<Stage> stages = List.of(
                new Stage("a", 0.0, 0.3, 3, 0, 1e-3),
                new Stage("b", 0.3, 0.7, 5, 0, 5e-4),
                new Stage("c", 0.7, 1.0, 2, 0, 1e-4));
        final CurriculumScheduler s = scheduler(CurriculumConfig.defaults(20).withStages(stages), 2, 16);
        final int[] tokens = new int[2 * 17];
        final StepPlan plan = new StepPlan();
        final int[] expected = {0, 0, 0, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2}; // the last stage lasts past its length
        final double[] lr = {1e-3, 5e-4, 1e-4};
        for (int i = 0; i < expected.length; i++) {
            s.next(tokens, plan);
            assertEquals(i, plan.step());
            assertEquals(expected[i], plan.stageIndex(), "step " + i);
            assertEquals(stages.get(expected[i]).name(), plan.stageName());
            assertEquals(lr[expected[i]], plan.lr(), 0.0);
            assertEquals(stages.get(expected[i]).maxDifficulty(), plan.maxDifficulty(), 0.0);
        }
    }

    @Test
    void shouldSwitchStagesAfterTheirLengthInTokens() {
        // B*T = 2*8 = 16 tokens per step: 40 tokens -> ceil(40/16) = 3 steps, 16 tokens -> 1 step, 17 -> 2 steps
        final List<Stage> stages = List.of(
                new Stage("a", 0.0, 0.3, 0, 40, 1e-3),
                new Stage("b", 0.3, 0.5, 0, 16, 5e-4),
                new Stage("c", 0.5, 0.7, 0, 17, Double.NaN),
                new Stage("d", 0.7, 1.0, 0, 1, 1e-4));
        final CurriculumScheduler s = scheduler(CurriculumConfig.defaults(20).withStages(stages), 2, 8);
        final int[] tokens = new int[2 * 9];
        final StepPlan plan = new StepPlan();
        final int[] expected = {0, 0, 0, 1, 2, 2, 3, 3, 3};
        for (int i = 0; i < expected.length; i++) {
            s.next(tokens, plan);
            assertEquals(expected[i], plan.stageIndex(), "step " + i);
            assertEquals(16L * (i + 1), plan.tokensConsumed());
        }
        assertEquals(16, s.tokensPerStep());
        s.restore(s.state()); // a round trip keeps the position
        s.next(tokens, plan);
        assertEquals(3, plan.stageIndex());
    }

    @Test
    void shouldReportNanLrForStageWithoutLr() {
        final List<Stage> stages = List.of(new Stage("only", 0.0, 1.0, 5, 0, Double.NaN));
        final CurriculumScheduler s = scheduler(CurriculumConfig.defaults(5).withStages(stages), 1, 8);
        final StepPlan plan = new StepPlan();
        s.next(new int[9], plan);
        assertTrue(Double.isNaN(plan.lr()));
    }

    @Test
    void shouldKeepStageSamplesInRangeWithoutReplay() {
        final List<Stage> stages = List.of(new Stage("a", 0.0, 0.3, 4, 0, 1e-3), new Stage("b", 0.3, 0.7, 4, 0, 1e-3),
                new Stage("c", 0.7, 1.0, 4, 0, 1e-3));
        final CurriculumScheduler s = scheduler(
                CurriculumConfig.defaults(12).withStages(stages).withReplayFraction(0.0), 8, 64);
        final int[] tokens = new int[8 * 65];
        final StepPlan plan = new StepPlan();
        for (int step = 0; step < 12; step++) {
            s.next(tokens, plan);
            final Stage stage = stages.get(plan.stageIndex());
            final List<Double> ds = TestData.completeSampleDifficulties(tokens, 8, 65);
            assertFalse(ds.isEmpty());
            for (final double d : ds) {
                assertTrue(stage.contains(d), "step " + step + ": " + d + " outside " + stage);
            }
        }
    }

    @Test
    void shouldReplayEasierSamplesAtTheConfiguredFraction() {
        final List<Stage> stages = List.of(new Stage("a", 0.0, 0.5, 1, 0, 1e-3), new Stage("b", 0.5, 1.0, 1, 0, 1e-3));
        final CurriculumScheduler s = scheduler(CurriculumConfig.defaults(2).withStages(stages).withReplayFraction(0.25),
                16, 128);
        final int[] tokens = new int[16 * 129];
        final StepPlan plan = new StepPlan();
        s.next(tokens, plan); // stage a: nothing easier exists, so no replay
        for (final double d : TestData.completeSampleDifficulties(tokens, 16, 129)) {
            assertTrue(d < 0.5, "stage a drew " + d);
        }
        int replayed = 0;
        int total = 0;
        for (int step = 0; step < 60; step++) {
            s.next(tokens, plan);
            assertEquals(1, plan.stageIndex());
            for (final double d : TestData.completeSampleDifficulties(tokens, 16, 129)) {
                total++;
                if (d < 0.5) {
                    replayed++;
                }
            }
        }
        // ~10k samples: the standard error of the share is ~0.005, so 0.03 is a safe band around 0.25
        assertEquals(0.25, replayed / (double) total, 0.03, replayed + " of " + total);
    }

    @Test
    void shouldUseDefaultStagesScaledToTotalSteps() {
        final List<Stage> stages = CurriculumConfig.defaultStages(1000);
        assertEquals(List.of("basic", "intermediate", "expert"), stages.stream().map(Stage::name).toList());
        assertEquals(300, stages.get(0).lengthSteps());
        assertEquals(400, stages.get(1).lengthSteps());
        assertEquals(300, stages.get(2).lengthSteps());
        assertEquals(CurriculumConfig.DEFAULT_BASE_LR, stages.get(0).lr());
        assertEquals(1e-3, stages.get(1).lr());
        assertEquals(4e-4, stages.get(2).lr(), "the same double as --stage expert:0.7:1:30%:4e-4");
        assertEquals(6e-4, CurriculumConfig.defaultStages(1000, 3e-3).get(2).lr(), "3e-3 x 0.2 rounds to 6e-4");
        // the article's values are one base rate away
        final List<Stage> article = CurriculumConfig.defaultStages(1000, CurriculumConfig.ARTICLE_BASE_LR);
        assertEquals(1e-4, article.get(0).lr());
        assertEquals(5e-5, article.get(1).lr());
        assertEquals(2e-5, article.get(2).lr());
        assertEquals(0.3, stages.get(0).maxDifficulty());
        assertEquals(0.7, stages.get(2).minDifficulty());
        assertTrue(stages.get(2).contains(1.0), "the expert stage includes difficulty 1");
        for (final Stage st : CurriculumConfig.defaultStages(1)) {
            assertEquals(1, st.lengthSteps(), "a one-step run still gets valid stages");
        }
    }

    @Test
    void shouldDrawUniformlyOverAllSamplesWithoutCurriculum() {
        final CurriculumScheduler s = scheduler(CurriculumConfig.defaults(CurriculumConfig.Kind.NONE, 10), 16, 128);
        final int[] tokens = new int[16 * 129];
        final StepPlan plan = new StepPlan();
        final int[] quarters = new int[4];
        for (int step = 0; step < 30; step++) {
            s.next(tokens, plan);
            assertEquals("none", plan.stageName());
            assertTrue(Double.isNaN(plan.lr()));
            for (final double d : TestData.completeSampleDifficulties(tokens, 16, 129)) {
                quarters[Math.min(3, (int) (d * 4))]++;
            }
        }
        final int total = Arrays.stream(quarters).sum();
        for (final int q : quarters) {
            assertEquals(0.25, q / (double) total, 0.03, Arrays.toString(quarters));
        }
    }

    @ParameterizedTest
    @EnumSource(CurriculumConfig.Kind.class)
    void shouldProduceIdenticalStreamsForTheSameSeed(final CurriculumConfig.Kind kind) {
        final CurriculumConfig config = CurriculumConfig.defaults(kind, 40);
        final List<int[]> a = run(scheduler(config, 4, 32), 40);
        final List<int[]> b = run(scheduler(config, 4, 32), 40);
        for (int i = 0; i < a.size(); i++) {
            assertArrayEquals(a.get(i), b.get(i), "step " + i);
        }
        final List<int[]> c = run(scheduler(config.withSeed(config.seed() + 1), 4, 32), 40);
        assertFalse(Arrays.equals(a.get(0), c.get(0)) && Arrays.equals(a.get(39), c.get(39)),
                "another seed draws other samples");
    }

    @ParameterizedTest
    @EnumSource(CurriculumConfig.Kind.class)
    void shouldResumeBitwiseAfterRestore(final CurriculumConfig.Kind kind) {
        // token-length stages and replay so the restored state covers every counter
        final List<Stage> stages = List.of(new Stage("a", 0.0, 0.4, 0, 100, 1e-3), new Stage("b", 0.4, 0.8, 7, 0, 5e-4),
                new Stage("c", 0.8, 1.0, 0, 64, 1e-4));
        final CurriculumConfig config = CurriculumConfig.defaults(kind, 30).withStages(stages);
        final CurriculumScheduler original = scheduler(config, 3, 16);
        final int[] tokens = new int[3 * 17];
        final StepPlan plan = new StepPlan();
        CurriculumState saved = null;
        final List<int[]> expected = new ArrayList<>();
        final List<String> expectedPlans = new ArrayList<>();
        for (int step = 0; step < 30; step++) {
            if (step == 11) {
                saved = CurriculumState.fromLongs(original.state().toLongs()); // as a checkpoint stores it
            }
            original.next(tokens, plan);
            if (step >= 11) {
                expected.add(tokens.clone());
                expectedPlans.add(plan.toString());
            }
        }
        final CurriculumScheduler resumed = scheduler(config, 3, 16);
        resumed.restore(saved);
        for (int i = 0; i < expected.size(); i++) {
            resumed.next(tokens, plan);
            assertArrayEquals(expected.get(i), tokens, "step " + (11 + i));
            assertEquals(expectedPlans.get(i), plan.toString());
        }
        assertEquals(original.state(), resumed.state());
    }

    @Test
    void shouldRejectStateOfAnotherDatasetOrConfig() {
        final CurriculumConfig config = CurriculumConfig.defaults(10);
        final CurriculumState state = scheduler(config, 2, 8).state();
        final CurriculumScheduler otherData = new CurriculumScheduler(config, TestData.graded(999), 2, 8);
        final IllegalArgumentException e1 = assertThrows(IllegalArgumentException.class, () -> otherData.restore(state));
        assertTrue(e1.getMessage().contains("another training set"), e1.getMessage());
        final CurriculumScheduler otherShape = scheduler(config, 2, 9);
        final IllegalArgumentException e2 = assertThrows(IllegalArgumentException.class, () -> otherShape.restore(state));
        assertTrue(e2.getMessage().contains("another curriculum config"), e2.getMessage());
        final CurriculumScheduler otherSeed = scheduler(config.withSeed(7), 2, 8);
        assertThrows(IllegalArgumentException.class, () -> otherSeed.restore(state));
    }

    @Test
    void shouldShuffleTrulyUsingEverySampleOncePerEpochInAFreshOrder() {
        // 40 distinct samples of 5 bytes + newline; rows of 12 tokens hold exactly two: 8 samples per step
        final List<Sample> samples = new java.util.ArrayList<>();
        for (int i = 0; i < 40; i++) {
            samples.add(new Sample(String.format("s%04d", i), i / 40.0, "x"));
        }
        final Dataset data = Dataset.of("epochs", samples);
        final CurriculumScheduler s = new CurriculumScheduler(CurriculumConfig.defaults(CurriculumConfig.Kind.SHUFFLE,
                10), data, 4, 11);
        final int[] tokens = new int[4 * 12];
        final StepPlan plan = new StepPlan();
        final List<List<String>> epochs = new java.util.ArrayList<>();
        for (int epoch = 0; epoch < 2; epoch++) {
            final List<String> order = new java.util.ArrayList<>();
            for (int step = 0; step < 5; step++) {
                s.next(tokens, plan);
                assertEquals("shuffle", plan.stageName());
                final StringBuilder text = new StringBuilder();
                for (final int t : tokens) {
                    text.append((char) t);
                }
                order.addAll(List.of(text.toString().split("\n")));
            }
            assertEquals(40, order.size());
            assertEquals(40, new java.util.HashSet<>(order).size(), "every sample exactly once in epoch " + epoch);
            epochs.add(order);
        }
        assertTrue(!epochs.get(0).equals(epochs.get(1)), "each epoch is shuffled afresh");
        final List<String> sorted = new java.util.ArrayList<>(epochs.get(0));
        java.util.Collections.sort(sorted);
        assertTrue(!epochs.get(0).equals(sorted), "the order is shuffled, not the dataset order");
    }

    @Test
    void shouldPackRowsWithFreshSamplesSeparatedByNewlines() {
        final List<Sample> samples = List.of(new Sample("ab", 0.1, "x"), new Sample("cdef\n", 0.2, "x"),
                new Sample("g".repeat(40), 0.3, "x"));
        final Dataset data = Dataset.of("pack", samples);
        final int b = 5;
        final int t = 12;
        final CurriculumScheduler s = new CurriculumScheduler(CurriculumConfig.defaults(CurriculumConfig.Kind.NONE, 5),
                data, b, t);
        final int[] tokens = new int[b * (t + 1)];
        Arrays.fill(tokens, -1);
        final StepPlan plan = new StepPlan();
        long samples0 = 0;
        for (int step = 0; step < 20; step++) {
            s.next(tokens, plan);
            long startedThisStep = 0;
            for (int r = 0; r < b; r++) {
                final StringBuilder row = new StringBuilder();
                for (int p = 0; p < t + 1; p++) {
                    final int tok = tokens[r * (t + 1) + p];
                    assertTrue(tok >= 0 && tok <= 255, "token " + tok);
                    row.append((char) tok);
                }
                // every row is a concatenation of whole samples, the last possibly cut, starting with a fresh one
                final String rowText = row.toString();
                int at = 0;
                while (at < rowText.length()) {
                    final String rest = rowText.substring(at);
                    final String match = List.of("ab\n", "cdef\n", "g".repeat(40) + "\n").stream()
                            .filter(x -> x.startsWith(rest) || rest.startsWith(x)).findFirst().orElse(null);
                    assertTrue(match != null, "row " + r + " = '" + rowText + "' has a partial sample at " + at);
                    at += Math.min(match.length(), rest.length());
                    startedThisStep++;
                }
            }
            assertEquals(samples0 + startedThisStep, plan.samplesConsumed(), "samples counted per step");
            samples0 = plan.samplesConsumed();
            assertEquals((long) b * t * (step + 1), plan.tokensConsumed());
        }
    }

    @ParameterizedTest
    @EnumSource(CurriculumConfig.Kind.class)
    void shouldHandOutDisjointShardsThatTogetherAreTheOneProcessBatch(final CurriculumConfig.Kind kind) {
        final CurriculumConfig config = CurriculumConfig.defaults(kind, 30).withReplayFraction(0.25);
        final CurriculumScheduler whole = scheduler(config, 6, 12);
        final CurriculumScheduler[] shards = {scheduler(config, 6, 12), scheduler(config, 6, 12),
            scheduler(config, 6, 12)};
        final int row = 13;
        final int[] all = new int[6 * row];
        final int[] part = new int[2 * row];
        final StepPlan wholePlan = new StepPlan();
        final StepPlan shardPlan = new StepPlan();
        for (int step = 0; step < 30; step++) {
            whole.next(all, wholePlan);
            for (int r = 0; r < shards.length; r++) {
                shards[r].next(part, shardPlan, r, shards.length);
                assertArrayEquals(Arrays.copyOfRange(all, r * 2 * row, (r + 1) * 2 * row), part,
                        "step " + step + ", shard " + r);
                assertEquals(wholePlan.stageIndex(), shardPlan.stageIndex());
                assertEquals(wholePlan.lr(), shardPlan.lr(), 0.0);
                assertEquals(wholePlan.tokensConsumed(), shardPlan.tokensConsumed());
                assertEquals(wholePlan.samplesConsumed(), shardPlan.samplesConsumed());
            }
        }
        assertArrayEquals(whole.state().toLongs(), shards[2].state().toLongs());
    }

    @Test
    void shouldRejectShardsThatDoNotDivideTheBatch() {
        final CurriculumScheduler s = scheduler(CurriculumConfig.defaults(10), 6, 8);
        assertThrows(IllegalArgumentException.class, () -> s.next(new int[9], new StepPlan(), 0, 4));
        assertThrows(IllegalArgumentException.class, () -> s.next(new int[3 * 9], new StepPlan(), 2, 2));
        assertThrows(IllegalArgumentException.class, () -> s.next(new int[6 * 9], new StepPlan(), 0, 2));
    }

    @Test
    void shouldRejectTokenArrayOfWrongLength() {
        final CurriculumScheduler s = scheduler(CurriculumConfig.defaults(10), 2, 8);
        final IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> s.next(new int[16], new StepPlan()));
        assertTrue(e.getMessage().contains("tokens.length=16"), e.getMessage());
    }

    @Test
    void shouldRejectStageWithoutSamples() {
        final Dataset easy = Dataset.of("easy", List.of(new Sample("a", 0.1, "x")));
        final IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> new CurriculumScheduler(CurriculumConfig.defaults(10), easy, 1, 8));
        assertTrue(e.getMessage().contains("stage intermediate"), e.getMessage());
    }

    @ParameterizedTest
    @EnumSource(CurriculumConfig.Kind.class)
    void shouldNotAllocateInNext(final CurriculumConfig.Kind kind) {
        final com.sun.management.ThreadMXBean mx = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        final List<Stage> stages = List.of(new Stage("a", 0.0, 0.4, 0, 5000, 1e-3), new Stage("b", 0.4, 0.8, 50, 0, 5e-4),
                new Stage("c", 0.8, 1.0, 0, 64, 1e-4));
        final CurriculumScheduler s = scheduler(CurriculumConfig.defaults(kind, 2000).withStages(stages), 16, 128);
        final int[] tokens = new int[16 * 129];
        final StepPlan plan = new StepPlan();
        for (int i = 0; i < 500; i++) {
            s.next(tokens, plan); // warm-up: class init, JIT
        }
        final long baseline = measuredBytes(mx, () -> { });
        final long bytes = measuredBytes(mx, () -> {
            for (int i = 0; i < 5000; i++) {
                s.next(tokens, plan);
            }
        });
        assertEquals(0, bytes - baseline, "bytes allocated by 5000 next() calls");
        assertTrue(plan.step() >= 5499, "the calls ran");
    }

    private static long measuredBytes(final com.sun.management.ThreadMXBean mx, final Runnable body) {
        final long before = mx.getCurrentThreadAllocatedBytes();
        body.run();
        return mx.getCurrentThreadAllocatedBytes() - before;
    }

    private static List<int[]> run(final CurriculumScheduler s, final int steps) {
        final List<int[]> out = new ArrayList<>();
        final int[] tokens = new int[s.batchSize() * (s.seqLen() + 1)];
        final StepPlan plan = new StepPlan();
        for (int i = 0; i < steps; i++) {
            s.next(tokens, plan);
            out.add(tokens.clone());
        }
        return out;
    }
}
