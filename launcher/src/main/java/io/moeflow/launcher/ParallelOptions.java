package io.moeflow.launcher;

import io.moeflow.trainer.parallel.ParallelConfig;
import io.moeflow.trainer.parallel.ParallelConfig.GradCompression;
import picocli.CommandLine.Option;

/**
 * How a rank of a {@code moeflow launch} job takes part (a picocli mixin of {@code train}); a
 * one-process run ignores them except to refuse expert parallelism, which needs several ranks.
 */
public final class ParallelOptions {
    @Option(names = "--expert-parallel", paramLabel = "K", defaultValue = "1",
        description = "Under moeflow launch: spread each layer's experts over K ranks (tokens travel by all-to-all); K divides "
            + "the number of ranks and --experts. Default: ${DEFAULT-VALUE} (data parallel only)")
    int expertParallel;

    @Option(names = "--grad-bucket-bytes", paramLabel = "BYTES", defaultValue = "" + ParallelConfig.DEFAULT_BUCKET_BYTES,
        description = "Under moeflow launch: dense gradients are all-reduced in buckets of this size while backward runs. "
            + "Default: ${DEFAULT-VALUE}")
    int bucketBytes;

    @Option(names = "--grad-compression", paramLabel = "KIND", defaultValue = "NONE",
        description = "Under moeflow launch: what dense gradients travel as: ${COMPLETION-CANDIDATES} (fp8 = E4M3 with error "
            + "feedback). Default: ${DEFAULT-VALUE}")
    GradCompression gradCompression;

    /** This rank's config in a job of {@code worldSize} ranks. */
    ParallelConfig toConfig(final int worldSize, final int rank) {
        return new ParallelConfig(worldSize, rank, expertParallel, bucketBytes, gradCompression);
    }

    /** Checks what can be checked without a job: a one-process run cannot spread experts. */
    void checkSingleProcess() {
        if (expertParallel != 1) {
            throw new IllegalArgumentException("--expert-parallel " + expertParallel + " needs several ranks: run it under "
                + "moeflow launch --nproc-per-node N (N a multiple of " + expertParallel + ")");
        }
    }
}
