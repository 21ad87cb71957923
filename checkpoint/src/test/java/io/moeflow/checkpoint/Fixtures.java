package io.moeflow.checkpoint;

import static io.moeflow.checkpoint.CheckpointFile.MODEL;
import static io.moeflow.checkpoint.CheckpointFile.STATE;

import java.time.Clock;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.Map;

/**
 * A small model-shaped layout whose every value is a function of (step, tensor, element), so any checkpoint can be
 * checked bit for bit against the step it claims to be.
 */
final class Fixtures {
    static final Clock FIXED_CLOCK = Clock.fixed(Instant.parse("2025-01-02T03:04:05Z"), ZoneOffset.UTC);
    static final RunMetadata METADATA = new RunMetadata("model.layers=2\nmodel.channels=8\n", "0.1.0-test",
        "abc123", "17.0.99", 2, Map.of("run_name", "fixture"));

    /** Parameter tensors of the fixture model, as (name, shape); their flat slab is {@link #PARAMS} long. */
    static final String[] PARAM_NAMES = {"wte.weight", "blocks.0.attn.qkv.weight", "blocks.0.attn.qkv.bias",
        "blocks.0.moe.experts.1.w1.weight", "lnf.weight"};
    static final long[][] PARAM_SHAPES = {{16, 8}, {24, 8}, {24}, {12, 8}, {8}};
    static final int PARAMS = 16 * 8 + 24 * 8 + 24 + 12 * 8 + 8;

    private Fixtures() {
    }

    /** Parameters and both AdamW moments in model.h5/state.h5, plus scalars and arrays of every other type. */
    static CheckpointLayout layout() {
        final CheckpointLayout.Builder b = CheckpointLayout.builder();
        for (int i = 0; i < PARAM_NAMES.length; i++) {
            b.float32(MODEL, PARAM_NAMES[i], PARAM_SHAPES[i]);
        }
        for (final String moment : new String[] {"exp_avg", "exp_avg_sq"}) {
            for (int i = 0; i < PARAM_NAMES.length; i++) {
                b.float32(STATE, "optimizer/" + moment + "/" + PARAM_NAMES[i], PARAM_SHAPES[i]);
            }
        }
        return b.int64(STATE, "step")
            .float64(STATE, "schedule/lr")
            .int32(STATE, "curriculum/stage")
            .float32(STATE, "loss_scale")
            .int64(STATE, "rng/data", 4)
            .float64(STATE, "moe/bias", 2, 3)
            .int32(STATE, "counters", 2, 2, 2)
            .build();
    }

    /** The value of element {@code i} of slab {@code slab} at {@code step}: distinct, exact in float32. */
    static float value(final long step, final int slab, final int i) {
        return (float) (step * 0.5 + slab * 1000 + i * 0.25 - 40);
    }

    /** Fills a snapshot with the fixture values for its step. */
    static void fill(final CheckpointWriter.Snapshot s) {
        final long step = s.step();
        final float[][] slabs = new float[3][PARAMS];
        for (int slab = 0; slab < 3; slab++) {
            for (int i = 0; i < PARAMS; i++) {
                slabs[slab][i] = value(step, slab, i);
            }
        }
        int offset = 0;
        final String[] prefixes = {"", "optimizer/exp_avg/", "optimizer/exp_avg_sq/"};
        for (int i = 0; i < PARAM_NAMES.length; i++) {
            for (int k = 0; k < 3; k++) {
                if (s.holds(k == 0 ? MODEL : STATE, prefixes[k] + PARAM_NAMES[i])) {
                    s.float32(k == 0 ? MODEL : STATE, prefixes[k] + PARAM_NAMES[i], slabs[k], offset);
                }
            }
            offset += (int) java.util.Arrays.stream(PARAM_SHAPES[i]).reduce(1, (a, c) -> a * c);
        }
        // A rank of a sharded save puts only what its layout holds (all of it for one process).
        if (s.holds(STATE, "step")) {
            s.int64(STATE, "step", step);
        }
        if (s.holds(STATE, "schedule/lr")) {
            s.float64(STATE, "schedule/lr", 1e-3 / (step + 1));
        }
        if (s.holds(STATE, "curriculum/stage")) {
            s.int32(STATE, "curriculum/stage", (int) (step % 7));
        }
        if (s.holds(STATE, "loss_scale")) {
            s.float32(STATE, "loss_scale", 0.5f);
        }
        if (s.holds(STATE, "rng/data")) {
            s.int64(STATE, "rng/data", new long[] {step, Long.MIN_VALUE, Long.MAX_VALUE, -step}, 0);
        }
        if (s.holds(STATE, "moe/bias")) {
            s.float64(STATE, "moe/bias", new double[] {0, -0.0, Double.MIN_VALUE, step, Double.NaN, 1e300}, 0);
        }
        if (s.holds(STATE, "counters")) {
            s.int32(STATE, "counters", new int[] {1, 2, 3, 4, 5, 6, 7, (int) step}, 0);
        }
    }

    /**
     * Rank {@code rank}'s share of the fixture layout in a job of {@code worldSize}: every tensor written by exactly
     * one rank (round robin), plus a per-rank tensor under {@code ranks/<k>/}.
     */
    static CheckpointLayout partLayout(final int rank, final int worldSize) {
        final CheckpointLayout.Builder b = CheckpointLayout.builder();
        final java.util.List<TensorSpec> all = layout().tensors();
        for (int i = 0; i < all.size(); i++) {
            if (i % worldSize == rank) {
                b.add(all.get(i));
            }
        }
        return b.int64(STATE, CheckpointFormat.RANK_STATE_PREFIX + rank + "/pid").build();
    }

    /** Saves the fixture at {@code step} with {@code writer} and returns the ticket. */
    static SaveTicket save(final CheckpointWriter writer, final long step) {
        final CheckpointWriter.Snapshot s = writer.begin(step);
        fill(s);
        return writer.commit(s);
    }

    /** Asserts a checkpoint holds exactly the fixture values of {@code step} (bitwise), else throws AssertionError. */
    static void assertHoldsStep(final CheckpointReader r, final long step) {
        if (r.step() != step) {
            throw new AssertionError("step " + r.step() + " != " + step);
        }
        r.checkLayout(layout());
        final float[] slab = new float[PARAMS];
        final String[] prefixes = {"", "optimizer/exp_avg/", "optimizer/exp_avg_sq/"};
        for (int k = 0; k < 3; k++) {
            int offset = 0;
            for (int i = 0; i < PARAM_NAMES.length; i++) {
                r.readFloat32(k == 0 ? MODEL : STATE, prefixes[k] + PARAM_NAMES[i], slab, offset);
                offset += r.tensor(k == 0 ? MODEL : STATE, prefixes[k] + PARAM_NAMES[i]).orElseThrow().elements();
            }
            for (int i = 0; i < PARAMS; i++) {
                if (Float.floatToRawIntBits(slab[i]) != Float.floatToRawIntBits(value(step, k, i))) {
                    throw new AssertionError("slab " + k + " element " + i + " = " + slab[i] + ", expected "
                        + value(step, k, i));
                }
            }
        }
        if (r.int64(STATE, "step") != step) {
            throw new AssertionError("state step " + r.int64(STATE, "step"));
        }
    }
}
