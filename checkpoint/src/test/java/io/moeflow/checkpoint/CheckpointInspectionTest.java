package io.moeflow.checkpoint;

import static io.moeflow.checkpoint.CheckpointFile.MODEL;
import static io.moeflow.checkpoint.CheckpointFile.STATE;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.file.Path;
import java.util.List;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

@Timeout(60)
class CheckpointInspectionTest {
    /** Norms are sums of a few hundred squares accumulated in double: agreement to 1e-12 relative. */
    private static final double NORM_TOLERANCE = 1e-12;

    @TempDir
    Path dir;

    @Test
    void shouldListEveryTensorWithShapeDtypeAndL2Norm() {
        try (CheckpointWriter w = new CheckpointWriter(CheckpointConfig.defaults(dir).withAsyncSave(false),
            Fixtures.layout(), Fixtures.METADATA)) {
            Fixtures.save(w, 9);
        }
        try (CheckpointReader r = CheckpointReader.open(dir.resolve("step-00000009"))) {
            assertEquals(9, r.step());
            assertEquals(Fixtures.PARAMS, r.parameterCount());
            final List<TensorStats> model = r.stats(MODEL);
            assertEquals(List.of("blocks.0.attn.qkv.bias", "blocks.0.attn.qkv.weight",
                "blocks.0.moe.experts.1.w1.weight", "lnf.weight", "wte.weight"),
                model.stream().map(s -> s.tensor().name()).toList());
            int offset = 0;
            for (int i = 0; i < Fixtures.PARAM_NAMES.length; i++) {
                final String name = Fixtures.PARAM_NAMES[i];
                final TensorStats stats = model.stream().filter(s -> s.tensor().name().equals(name)).findFirst()
                    .orElseThrow();
                final int n = stats.tensor().elements();
                double sum = 0;
                for (int k = 0; k < n; k++) {
                    final double x = Fixtures.value(9, 0, offset + k);
                    sum += x * x;
                }
                offset += n;
                assertEquals(Math.sqrt(sum), stats.l2Norm(), NORM_TOLERANCE * Math.sqrt(sum), name);
                assertEquals(DType.FLOAT32, stats.tensor().dtype());
            }
            final TensorStats counters = r.stats(STATE).stream().filter(s -> s.tensor().name().equals("counters"))
                .findFirst().orElseThrow();
            assertEquals(Math.sqrt(1 + 4 + 9 + 16 + 25 + 36 + 49 + 81), counters.l2Norm(), 1e-12);
            assertEquals("[2, 2, 2]", counters.tensor().shapeText());
        }
    }
}
