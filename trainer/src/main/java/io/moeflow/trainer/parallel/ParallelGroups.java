package io.moeflow.trainer.parallel;

import io.moeflow.transport.Communicator;

/**
 * The communicators of one rank of a training job, made once from the job-wide one (see
 * {@link ParallelConfig} for the rank layout):
 * <ul>
 *   <li>{@link #world()}: every rank; dense gradients, metrics, router load;</li>
 *   <li>{@link #experts()}: the K ranks of this rank's expert-parallel group (token all-to-all);</li>
 *   <li>{@link #expertReplicas()}: the W/K ranks holding the same experts (expert gradient all-reduce).</li>
 * </ul>
 * In a one-process run ({@link #single}) every communicator is null and nothing is sent. The
 * sub-groups are this object's ({@link #close} detaches them); the job-wide communicator belongs to
 * whoever created it.
 */
public final class ParallelGroups implements AutoCloseable {
    private final ParallelConfig config;
    private final int experts;
    private final Communicator world;
    private final Communicator expertGroup;
    private final Communicator replicaGroup;

    private ParallelGroups(final ParallelConfig config, final int experts, final Communicator world,
                           final Communicator expertGroup, final Communicator replicaGroup) {
        this.config = config;
        this.experts = experts;
        this.world = world;
        this.expertGroup = expertGroup;
        this.replicaGroup = replicaGroup;
    }

    /** A one-process run of a model with {@code experts} routed experts. */
    public static ParallelGroups single(final int experts) {
        return new ParallelGroups(ParallelConfig.SINGLE, experts, null, null, null);
    }

    /**
     * Splits {@code world} into the expert-parallel and expert-replica groups: collective over the
     * job, every rank calls it at the same point. A world of one (or a null communicator with
     * {@link ParallelConfig#SINGLE}) gives {@link #single}.
     *
     * @throws IllegalArgumentException when the communicator's rank or size differ from the config's,
     *                                  or K does not divide the expert count
     */
    public static ParallelGroups split(final ParallelConfig config, final Communicator world, final int experts) {
        if (config == null) {
            throw new IllegalArgumentException("config=null: give ParallelConfig.SINGLE for one process");
        }
        if (experts % config.expertParallel() != 0) {
            throw new IllegalArgumentException("expertParallel=" + config.expertParallel() + " must divide the expert "
                + "count " + experts + ": choose --expert-parallel among the divisors of --experts");
        }
        if (world == null) {
            if (config.distributed()) {
                throw new IllegalArgumentException("worldSize=" + config.worldSize() + " needs a Communicator of the job; "
                    + "got none");
            }
            return single(experts);
        }
        if (world.size() != config.worldSize() || world.rank() != config.rank()) {
            throw new IllegalArgumentException("the communicator is rank " + world.rank() + " of " + world.size()
                + " but the config says rank " + config.rank() + " of " + config.worldSize());
        }
        if (!config.distributed()) {
            return new ParallelGroups(config, experts, null, null, null);
        }
        final int k = config.expertParallel();
        final Communicator expertGroup = world.split(config.rank() / k, config.rank());
        final Communicator replicaGroup = world.split(config.rank() % k, config.rank());
        return new ParallelGroups(config, experts, world, expertGroup, replicaGroup);
    }

    public ParallelConfig config() {
        return config;
    }

    /** True when there is more than one rank (the communicators are then non-null). */
    public boolean distributed() {
        return world != null;
    }

    /** Every rank of the job, or null in one process. */
    public Communicator world() {
        return world;
    }

    /** The K ranks that together hold every expert once (position {@code rank % K}), or null in one process. */
    public Communicator experts() {
        return expertGroup;
    }

    /** The W/K ranks holding the same experts as this one, or null in one process. */
    public Communicator expertReplicas() {
        return replicaGroup;
    }

    /** Routed experts per rank, E/K. */
    public int expertsPerRank() {
        return experts / config.expertParallel();
    }

    /** The first routed expert this rank holds; it holds {@link #expertsPerRank()} from there. */
    public int firstLocalExpert() {
        return config.expertShard() * expertsPerRank();
    }

    /** The position in the expert-parallel group of the rank that holds routed expert {@code e}. */
    public int expertOwner(final int e) {
        return e / expertsPerRank();
    }

    /** True when this rank holds routed expert {@code e}. */
    public boolean holdsExpert(final int e) {
        return expertOwner(e) == config.expertShard();
    }

    /** Detaches the sub-groups (the job-wide communicator stays open). */
    @Override
    public void close() {
        if (expertGroup != null) {
            expertGroup.close();
        }
        if (replicaGroup != null) {
            replicaGroup.close();
        }
    }
}
