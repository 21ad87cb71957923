package io.moeflow.launcher;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Optional;

import org.junit.jupiter.api.Test;

/** The baseline's BLAS, read from canned outputs of bench/torch_moe_reference.py, and when a ratio is refused. */
class BaselineBlasTest {
    private static final String FAST = "torch 1.13.1 openblas_coretype=SkylakeX blas=openblas blas_core=SkylakeX "
        + "blas_lib=/usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3 threads=1 params=2345472 step=150.0ms "
        + "tokens/s=13653 loss=5.621";
    private static final String PRESCOTT = "torch 1.13.1 openblas_coretype=auto blas=openblas blas_core=Prescott "
        + "blas_lib=/usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3 threads=1 params=2345472 step=2639.0ms "
        + "tokens/s=776 loss=5.621";
    private static final String REFERENCE = "torch 1.13.1 openblas_coretype=SkylakeX blas=reference blas_core=- "
        + "blas_lib=/usr/lib/x86_64-linux-gnu/blas/libblas.so.3 threads=1 params=2345472 step=3000.0ms "
        + "tokens/s=683 loss=5.621";
    private static final String OLD_SCRIPT = "torch 1.13.1 threads=1 params=2345472 step=472.1ms tokens/s=4338 "
        + "loss=5.621";

    @Test
    void shouldAllowARatioAgainstTheCpusOwnOpenBlasKernels() {
        final BaselineBlas b = BaselineBlas.parse(List.of("some warning", FAST));
        assertEquals(new BaselineBlas("openblas", "SkylakeX",
            "/usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3"), b);
        assertEquals(Optional.empty(), b.refusal());
        assertTrue(b.describe().startsWith("OpenBLAS SkylakeX kernels"), b.describe());
        assertEquals(13653, BenchTrainCommand.tokensPerSecond(List.of(FAST)));
    }

    @Test
    void shouldRefuseARatioAgainstOpenBlasGenericKernels() {
        final BaselineBlas b = BaselineBlas.parse(List.of(PRESCOTT));
        assertEquals("Prescott", b.core());
        assertTrue(b.refusal().orElseThrow().contains("generic Prescott kernels"), b.refusal().toString());
        for (final String core : List.of("Core2", "Katmai", "Atom", "Penryn")) {
            assertTrue(new BaselineBlas("openblas", core, "-").refusal().isPresent(), core);
        }
        for (final String core : List.of("Haswell", "Zen", "SkylakeX", "Cooperlake", "SapphireRapids")) {
            assertTrue(new BaselineBlas("openblas", core, "-").refusal().isEmpty(), core);
        }
    }

    @Test
    void shouldRefuseARatioAgainstTheReferenceBlas() {
        final BaselineBlas b = BaselineBlas.parse(List.of(REFERENCE));
        assertEquals("reference", b.library());
        assertTrue(b.refusal().orElseThrow().contains("reference BLAS"), b.refusal().toString());
        assertTrue(b.describe().contains("/usr/lib/x86_64-linux-gnu/blas/libblas.so.3"), b.describe());
    }

    @Test
    void shouldRefuseARatioWhenTheBaselineDoesNotSayWhichBlasItRan() {
        final BaselineBlas b = BaselineBlas.parse(List.of(OLD_SCRIPT));
        assertEquals("unknown", b.library());
        assertTrue(b.refusal().isPresent());
    }

    @Test
    void shouldAllowARatioAgainstMkl() {
        final BaselineBlas b = BaselineBlas.parse(List.of("torch 2.3.0 openblas_coretype=SkylakeX blas=mkl blas_core=- "
            + "blas_lib=- threads=1 tokens/s=15000 loss=5.6"));
        assertEquals(Optional.empty(), b.refusal());
        assertEquals("Intel MKL", b.describe());
    }
}
