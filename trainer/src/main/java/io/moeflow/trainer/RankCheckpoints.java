package io.moeflow.trainer;

import java.util.Optional;

import io.moeflow.checkpoint.CheckpointConfig;
import io.moeflow.checkpoint.CheckpointStore;
import io.moeflow.checkpoint.CheckpointWriter;
import io.moeflow.checkpoint.FaultInjector;
import io.moeflow.checkpoint.RankExchange;
import io.moeflow.checkpoint.Resolution;
import io.moeflow.checkpoint.RunMetadata;
import io.moeflow.checkpoint.ShardConfig;
import io.moeflow.transport.Communicator;

/**
 * Checkpoints of a trainer that may be one rank of a job: the writer (sharded when the job has more than one
 * rank, plain in one process) and the resume (rank 0 chooses the step and every rank loads it, by name, whatever
 * world size or expert-parallel degree wrote it). The launcher calls these; each is collective over the job, so
 * every rank calls it at the same point, on its training thread.
 */
public final class RankCheckpoints {
    private RankCheckpoints() {
    }

    /**
     * The checkpoint module's cross-rank step over the job's communicator: an all-gather of one {@code long} per
     * rank (two ints each). It runs on the calling thread, which must be the one that uses {@code world}; the
     * communicator's timeout bounds it.
     */
    public static RankExchange exchange(final Communicator world) {
        final int ranks = world.size();
        final int rank = world.rank();
        return value -> {
            final int[] buf = new int[2 * ranks];
            buf[2 * rank] = (int) (value >>> 32);
            buf[2 * rank + 1] = (int) value;
            world.allGather(buf, 0, 2);
            final long[] all = new long[ranks];
            for (int r = 0; r < ranks; r++) {
                all[r] = ((long) buf[2 * r] << 32) | (buf[2 * r + 1] & 0xFFFF_FFFFL);
            }
            return all;
        };
    }

    /** This rank's part in sharded checkpoints: rank, world size, exchange, and the job shape for the metadata. */
    public static ShardConfig shardConfig(final Trainer trainer) {
        return new ShardConfig(trainer.parallelConfig().rank(), trainer.parallelConfig().worldSize(),
            exchange(trainer.groups().world()),
            TrainingState.shardProperties(trainer.model().config(), trainer.parallelConfig()));
    }

    /**
     * The writer for this trainer: in one process, a plain writer of {@link TrainingState#layout}; as a rank of a job,
     * a sharded writer of {@link TrainingState#rankLayout} (collective: every rank constructs it at the same point).
     * With {@code asyncSave}, a sharded save commits at the writer's next {@code begin}, {@code commitPending},
     * {@code awaitIdle} or {@code close}.
     */
    public static CheckpointWriter writer(final CheckpointConfig config, final RunMetadata metadata,
                                          final Trainer trainer, final FaultInjector faults) {
        if (!trainer.parallelConfig().distributed()) {
            return new CheckpointWriter(config, TrainingState.layout(trainer.model().config(),
                trainer.model().tensors()), metadata, faults, java.time.Clock.systemUTC());
        }
        return new CheckpointWriter(config, TrainingState.rankLayout(trainer.model().config(),
            trainer.model().tensors(), trainer.parallelConfig()), metadata, faults, java.time.Clock.systemUTC(),
            shardConfig(trainer));
    }

    /**
     * Continues from the newest checkpoint every rank can load ({@link CheckpointStore#loadAuto}): in a job, rank 0
     * chooses the step and broadcasts it, so the ranks never resume from different steps.
     *
     * @return empty when there is no checkpoint yet (on every rank)
     */
    public static Optional<Resolution> resumeAuto(final CheckpointStore store, final Trainer trainer) {
        return trainer.parallelConfig().distributed() ? store.loadAuto(trainer::restore, shardConfig(trainer))
            : store.loadAuto(trainer::restore);
    }
}
