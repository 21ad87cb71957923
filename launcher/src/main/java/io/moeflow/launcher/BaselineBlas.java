package io.moeflow.launcher;

import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Which BLAS the PyTorch baseline ran on, parsed from the result line of {@code bench/torch_moe_reference.py}
 * ({@code blas=openblas blas_core=SkylakeX blas_lib=...}), and whether a speed ratio against it is honest.
 *
 * <p>Debian's OpenBLAS 0.3.21 does not recognise every recent CPU and then falls back to its generic Prescott
 * kernels (a 1024^2 sgemm ran at 24 GFLOP/s there against 103 with the SkylakeX kernels); a Python whose torch
 * found only the netlib reference BLAS ({@code libblas3} without {@code libopenblas0-pthread}) is slower still. A
 * ratio against either measures the baseline's BLAS install, not MoEFlow, so none is printed.
 *
 * @param library the BLAS library kind: {@code openblas}, {@code mkl}, {@code reference} or {@code unknown}
 * @param core    OpenBLAS's kernel set ({@code openblas_get_corename}), {@code -} when not OpenBLAS
 * @param path    the shared library the baseline process loaded, {@code -} when unknown
 */
record BaselineBlas(String library, String core, String path) {
    private static final Pattern BLAS = Pattern.compile("\\bblas=(\\S+)");
    private static final Pattern CORE = Pattern.compile("\\bblas_core=(\\S+)");
    private static final Pattern LIB = Pattern.compile("\\bblas_lib=(\\S+)");
    /**
     * OpenBLAS's generic x86 kernel sets (lower case): what it uses for a CPU it does not recognise, or on request
     * for old CPUs. None of them uses AVX2 or AVX-512.
     */
    static final Set<String> GENERIC_CORES = Set.of("prescott", "katmai", "coppermine", "northwood", "banias",
        "core2", "penryn", "dunnington", "atom", "generic", "unknown");

    /** Parses the baseline's output; a line without {@code blas=} (an older script) gives library {@code unknown}. */
    static BaselineBlas parse(final List<String> lines) {
        for (final String line : lines) {
            final Matcher b = BLAS.matcher(line);
            if (b.find()) {
                return new BaselineBlas(b.group(1), find(CORE, line), find(LIB, line));
            }
        }
        return new BaselineBlas("unknown", "-", "-");
    }

    private static String find(final Pattern p, final String line) {
        final Matcher m = p.matcher(line);
        return m.find() ? m.group(1) : "-";
    }

    /** How the bench names the baseline's BLAS, e.g. {@code OpenBLAS SkylakeX kernels (/usr/lib/...)}. */
    String describe() {
        final String where = path.equals("-") ? "" : " (" + path + ")";
        return switch (library) {
            case "openblas" -> "OpenBLAS " + core + " kernels" + where;
            case "mkl" -> "Intel MKL" + where;
            case "reference" -> "the netlib reference BLAS" + where;
            default -> "an unknown BLAS" + where;
        };
    }

    /** Why no ratio may be printed against this baseline (one line), or empty when a ratio is honest. */
    Optional<String> refusal() {
        return switch (library) {
            case "openblas" -> GENERIC_CORES.contains(core.toLowerCase(Locale.ROOT))
                ? Optional.of("no ratio: PyTorch ran on OpenBLAS's generic " + core + " kernels, several times slower "
                    + "than this CPU's own; run with OPENBLAS_CORETYPE set to this CPU's kernels (e.g. SkylakeX or "
                    + "Haswell) or a newer OpenBLAS")
                : Optional.empty();
            case "mkl" -> Optional.empty();
            case "reference" -> Optional.of("no ratio: PyTorch ran on the netlib reference BLAS (libblas3), not an "
                + "optimised one; install libopenblas0-pthread (apt-get install libopenblas0-pthread)");
            default -> Optional.of("no ratio: the baseline did not report which BLAS it ran on (an older "
                + "bench/torch_moe_reference.py?), so its kernels cannot be checked");
        };
    }
}
