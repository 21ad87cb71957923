package io.moeflow.trainer.parallel;

/**
 * How one rank takes part in a distributed training job. Validated here; the launcher fills it from
 * RANK/WORLD_SIZE and the {@code --expert-parallel}, {@code --grad-bucket-bytes} and
 * {@code --grad-compression} options. {@link #SINGLE} is a one-process run.
 *
 * <p>Ranks {@code [g*K, (g+1)*K)} form expert-parallel group {@code g} (together they hold every
 * expert once; tokens move between them by all-to-all); rank {@code r} holds experts
 * {@code [(r%K)*E/K, (r%K+1)*E/K)}. The {@code W/K} ranks with the same {@code r % K} hold the same
 * experts and all-reduce those experts' gradients. Every rank holds the dense parameters (attention,
 * router, LayerNorms, embeddings, head, shared experts) and all-reduces their gradients over the whole
 * job. Each rank trains on its own {@code B/W} rows of every global batch of B rows.
 *
 * @param worldSize       W, ranks in the job (>= 1)
 * @param rank            this rank, in [0, W)
 * @param expertParallel  K, ranks one copy of the experts is spread over; divides W (and the expert count)
 * @param bucketBytes     size of one gradient bucket all-reduced while backward continues (>= 4 KiB)
 * @param gradCompression what the dense gradient all-reduce sends on the wire
 */
public record ParallelConfig(int worldSize, int rank, int expertParallel, int bucketBytes,
                             GradCompression gradCompression) {

    /** 1 MiB buckets: a few per model of the bench size, so the first ones overlap most of the backward. */
    public static final int DEFAULT_BUCKET_BYTES = 1 << 20;

    /** One process, no communication. */
    public static final ParallelConfig SINGLE = new ParallelConfig(1, 0, 1, DEFAULT_BUCKET_BYTES, GradCompression.NONE);

    /** What dense gradients are sent as. */
    public enum GradCompression {
        /** float32: the reduced gradient is exact up to the order of additions. */
        NONE,
        /** FP8 E4M3 with per-block scales and error feedback (the residual is rank state, saved in checkpoints). */
        FP8
    }

    public ParallelConfig {
        if (worldSize < 1) {
            throw new IllegalArgumentException("worldSize=" + worldSize + ": must be >= 1");
        }
        if (rank < 0 || rank >= worldSize) {
            throw new IllegalArgumentException("rank=" + rank + ": must be in [0, worldSize=" + worldSize + ")");
        }
        if (expertParallel < 1 || worldSize % expertParallel != 0) {
            throw new IllegalArgumentException("expertParallel=" + expertParallel + ": must be >= 1 and divide worldSize="
                + worldSize + " (e.g. 1, or the world size)");
        }
        if (bucketBytes < 4096) {
            throw new IllegalArgumentException("bucketBytes=" + bucketBytes + ": must be >= 4096 (default "
                + DEFAULT_BUCKET_BYTES + ")");
        }
        if (gradCompression == null) {
            throw new IllegalArgumentException("gradCompression=null: give NONE or FP8");
        }
    }

    /** A data-parallel job of {@code worldSize} ranks (no expert parallelism, default buckets, float32). */
    public static ParallelConfig dataParallel(final int worldSize, final int rank) {
        return new ParallelConfig(worldSize, rank, 1, DEFAULT_BUCKET_BYTES, GradCompression.NONE);
    }

    /** True when more than one rank trains. */
    public boolean distributed() {
        return worldSize > 1;
    }

    /** W/K: how many ranks hold each expert (the size of an expert-replica group). */
    public int expertReplicas() {
        return worldSize / expertParallel;
    }

    /** This rank's position in its expert-parallel group, in [0, K): which slice of the experts it holds. */
    public int expertShard() {
        return rank % expertParallel;
    }

    /** Checks that this job shape fits a model of {@code experts} routed experts and a global batch of {@code batch} rows. */
    public void checkFits(final int experts, final int batch) {
        if (experts % expertParallel != 0) {
            throw new IllegalArgumentException("expertParallel=" + expertParallel + " must divide the expert count "
                + experts + ": choose --expert-parallel among the divisors of --experts");
        }
        if (batch % worldSize != 0) {
            throw new IllegalArgumentException("batchSize=" + batch + " (the global batch) must be divisible by the world "
                + "size " + worldSize + ": every rank trains on batchSize/worldSize rows");
        }
    }
}
