package io.moeflow.trainer;

import java.util.ArrayList;
import java.util.List;

import io.moeflow.checkpoint.CheckpointReader;
import io.moeflow.checkpoint.CheckpointWriter;
import io.moeflow.checkpoint.SaveResult;
import io.moeflow.checkpoint.SaveTicket;
import io.moeflow.curriculum.CurriculumConfig;
import io.moeflow.curriculum.CurriculumScheduler;
import io.moeflow.curriculum.Dataset;
import io.moeflow.curriculum.StepPlan;
import io.moeflow.optimizer.AdamW;
import io.moeflow.optimizer.AdamWConfig;
import io.moeflow.optimizer.LrSchedule;
import io.moeflow.trainer.model.ModelConfig;
import io.moeflow.trainer.model.MoeModel;
import io.moeflow.trainer.model.Parallel;
import io.moeflow.trainer.model.TensorView;
import io.moeflow.trainer.parallel.GradientBuckets;
import io.moeflow.trainer.parallel.JobMetrics;
import io.moeflow.trainer.parallel.ParallelConfig;
import io.moeflow.trainer.parallel.ParallelGroups;
import io.moeflow.transport.Communicator;

/**
 * Trains a {@link MoeModel}, in one process or as one rank of a job: the curriculum feeds batches,
 * AdamW updates the parameters, checkpoints are saved every {@code saveEvery} steps.
 * {@link #trainStep()} is the whole training step, top to bottom, with its collective calls;
 * {@link #train} is the loop around it.
 *
 * <p><b>As one rank of a job</b> (the API the launcher, expert parallelism and sharded checkpoints
 * build on): {@link #Trainer(TrainerConfig, ModelConfig, AdamWConfig, CurriculumConfig, Dataset,
 * ParallelConfig, Communicator)} takes the job shape ({@link ParallelConfig}: world size, rank,
 * expert-parallel degree K, gradient bucket size, gradient compression) and the job-wide
 * {@link Communicator}; it splits it into {@link ParallelGroups} (world, expert-parallel group,
 * expert-replica group), reachable from {@link #groups()} and from the model
 * ({@link MoeModel#groups()}). The global batch is {@link TrainerConfig#batchSize()} whatever the
 * world size.
 */
public final class Trainer implements AutoCloseable {
    private final TrainerConfig config;
    private final ParallelConfig parallel;
    private final ParallelGroups groups;
    private final MoeModel model;
    private final AdamW optimizer;
    private final CurriculumScheduler curriculum;
    private final LrSchedule lrSchedule;

    // Preallocated per-step state: the step itself allocates nothing.
    private final int[] tokens;
    private final StepPlan plan = new StepPlan();
    private final StepMetrics metrics;
    private final GradientBuckets denseBuckets;
    private final JobMetrics jobMetrics;
    private final double[] normChunkSums;
    /** Sum of squares of each expert-parallel member's own expert gradients (global norm with K &gt; 1). */
    private final float[] expertSquares;
    private final Parallel.Task normTask = this::normStage;
    private final Parallel.Task updateTask = this::updateStage;
    private float clipFactor;
    private long completedSteps;
    private double lastLr;

    private CheckpointWriter checkpoints;
    private long saveEvery;
    private final List<SaveResult> saved = new ArrayList<>();
    private volatile boolean stopRequested;
    /** The stop request as the whole job agreed on it at the last step (the request itself in one process). */
    private volatile boolean stopAgreed;
    private Evaluator evaluator;
    private Dataset evalData;
    private long evalEvery;
    private int evalSamples;

    /** A one-process trainer ({@link ParallelConfig#SINGLE}). */
    public Trainer(final TrainerConfig config, final ModelConfig modelConfig, final AdamWConfig adamWConfig,
                   final CurriculumConfig curriculumConfig, final Dataset training) {
        this(config, modelConfig, adamWConfig, curriculumConfig, training, ParallelConfig.SINGLE, null);
    }

    /**
     * A trainer that is rank {@code parallel.rank()} of a job of {@code parallel.worldSize()} ranks.
     *
     * <p>Every rank constructs its trainer with the same configs and dataset (so the same seeds) and its
     * own {@code parallel} and job-wide {@code world} communicator, at the same point: the constructor
     * splits {@code world} into the expert-parallel and expert-replica groups ({@link ParallelGroups},
     * a collective call). {@link TrainerConfig#batchSize()} stays the global batch B: each rank trains
     * on its own B/W rows of it ({@link CurriculumScheduler#next(int[], StepPlan, int, int)}), and the
     * gradients are reduced over the job so every rank applies the update the one-process run would.
     * Every rank then calls {@link #train} (or {@link #trainStep}) the same number of times; each step
     * runs collectives, so a rank that stops early makes the others fail with a timeout naming it.
     * The trainer does not close {@code world} (its creator does); {@link #close} detaches the sub-groups.
     *
     * @param parallel {@link ParallelConfig#SINGLE} with a null {@code world} for one process; a world of
     *                 one with a communicator also runs as one process
     * @param world    the job-wide communicator, whose rank and size must equal {@code parallel}'s
     */
    public Trainer(final TrainerConfig config, final ModelConfig modelConfig, final AdamWConfig adamWConfig,
                   final CurriculumConfig curriculumConfig, final Dataset training, final ParallelConfig parallel,
                   final Communicator world) {
        if (parallel == null) {
            throw new IllegalArgumentException("parallel=null: give ParallelConfig.SINGLE for one process");
        }
        parallel.checkFits(modelConfig.experts(), config.batchSize());
        this.config = config;
        this.parallel = parallel;
        final int localBatch = config.batchSize() / parallel.worldSize();
        this.groups = ParallelGroups.split(parallel, world, modelConfig.experts());
        this.model = new MoeModel(modelConfig, localBatch, config.threads(), config.kernels(), config.seed(), groups);
        this.optimizer = new AdamW(adamWConfig, model.paramSegments());
        this.curriculum = new CurriculumScheduler(curriculumConfig, training, config.batchSize(), modelConfig.seqLen());
        this.lrSchedule = schedule(config, curriculumConfig);
        this.tokens = new int[localBatch * (modelConfig.seqLen() + 1)];
        this.metrics = new StepMetrics(modelConfig.layers(), modelConfig.experts());
        this.normChunkSums = new double[optimizer.normChunkCount()];
        if (parallel.expertParallel() > 1 && !model.reducesExpertGradients()) {
            throw new IllegalArgumentException("expertParallel=" + parallel.expertParallel() + ": this model does not "
                + "distribute its experts yet; use expertParallel=1 (data parallelism)");
        }
        this.denseBuckets = new GradientBuckets(groups.world(), model.grads(), denseRanges(model),
            parallel, Parallel.DEFAULT_TIMEOUT_NS);
        this.jobMetrics = new JobMetrics(groups.world(), localBatch * modelConfig.seqLen());
        this.expertSquares = new float[parallel.expertParallel()];
    }

    /**
     * The tensors every rank holds and whose gradients the trainer averages over the whole job: all of
     * them, except the routed experts when the MoE layers reduce those within their replica groups.
     */
    private static List<int[]> denseRanges(final MoeModel model) {
        final List<int[]> ranges = new ArrayList<>();
        for (final TensorView t : model.tensors()) {
            if (!(model.reducesExpertGradients() && t.name().contains(".moe.experts."))) {
                ranges.add(new int[] {t.offset(), t.length()});
            }
        }
        return ranges;
    }

    /**
     * Saves a checkpoint every {@code every} steps (and when training ends or is stopped) through
     * {@code writer}, whose layout must be {@link TrainingState#layout} of this model.
     */
    public void saveCheckpointsTo(final CheckpointWriter writer, final long every) {
        if (every < 0) {
            throw new IllegalArgumentException("saveEvery=" + every + " must be >= 0 (0 = only at the end)");
        }
        this.checkpoints = writer;
        this.saveEvery = every;
    }

    /**
     * Measures the held-out loss ({@link Evaluator#loss}) over {@code samples} samples of
     * {@code heldOut} every {@code every} steps, into {@link StepMetrics#evalLoss}. It runs the
     * model forward only: parameters, optimizer and curriculum are untouched, so it does not change
     * the training run.
     */
    public void evaluateEvery(final Dataset heldOut, final long every, final int samples) {
        if (every < 0 || samples < 1) {
            throw new IllegalArgumentException("evalEvery=" + every + " must be >= 0 and evalSamples=" + samples
                + " >= 1");
        }
        this.evaluator = new Evaluator(model);
        this.evalData = heldOut;
        this.evalEvery = every;
        this.evalSamples = samples;
    }

    /** Continues from a checkpoint: parameters, optimizer, curriculum and step count, checksums verified. */
    public void restore(final CheckpointReader reader) {
        TrainingState.restore(reader, this);
    }

    /**
     * Runs steps until {@link TrainerConfig#steps()} are done or {@link #requestStop()} is called,
     * reporting each one to {@code monitor}; then saves a final checkpoint (if checkpointing is on)
     * and waits for it to be committed.
     *
     * @return true if all steps ran, false if stopped early
     */
    public boolean train(final StepMonitor monitor) {
        while (completedSteps < config.steps() && !stopAgreed) {
            final StepMetrics m = trainStep();
            if (evalEvery > 0 && completedSteps % evalEvery == 0) {
                m.evalLoss = evaluator.loss(evalData, evalSamples);
            }
            if (checkpoints != null) {
                if (saveEvery > 0 && completedSteps % saveEvery == 0) {
                    m.checkpointStallNs = saveCheckpoint().stallNs();
                } else if (checkpoints.sharded() && saveEvery > 0 && completedSteps % saveEvery == 1) {
                    // A sharded save commits after a barrier on this thread: every rank, one step after the save.
                    saved.addAll(checkpoints.commitPending());
                }
                saved.addAll(checkpoints.pollCompleted()); // surfaces a failed background save at once
            }
            monitor.onStep(m);
        }
        // expert parallel: every rank gets every expert's parameters, so evaluation and generation (logits) work on
        // any rank after training (collective: every rank leaves the loop after the same step)
        model.gatherExpertParameters();
        if (checkpoints != null) {
            if (saveEvery == 0 || completedSteps % saveEvery != 0) {
                saveCheckpoint();
            }
            saved.addAll(checkpoints.awaitIdle());
        }
        return completedSteps >= config.steps();
    }

    /**
     * One training step: data, forward, backward, gradient clipping, AdamW, load balancing, metrics.
     *
     * @return this step's measurements (a reused object)
     */
    public StepMetrics trainStep() {
        final long startNs = System.nanoTime();

        // 1. Data: the curriculum picks this step's global batch (and, when staged, its learning rate);
        //    this rank keeps its own rows of it.
        curriculum.next(tokens, plan, parallel.rank(), parallel.worldSize());
        final double lr = lrSchedule.lr(plan.step());

        // 2. Forward: embeddings -> L x [attention, MoE] -> head -> cross-entropy + aux + z losses
        //    (this rank's rows; distributed, the MoE layers all-gather the routing counts and move tokens).
        model.forward(tokens);

        // 3. Backward, last layer first, into model.grads(). As each bucket of dense gradients is final,
        //    it is all-reduced over the job (allReduceAsync) while backward goes on below it.
        denseBuckets.allReduceCompleted(model.backwardHead());
        for (int l = model.config().layers() - 1; l >= 0; l--) {
            denseBuckets.allReduceCompleted(model.backwardBlock(l));
        }
        denseBuckets.allReduceCompleted(model.backwardEmbedding());

        // 4. Reduce: wait for the buckets (every rank then holds the job's mean gradient of the replicated
        //    tensors; the MoE layers reduced their experts' within each replica group during backward);
        //    the job's loss from every rank's per-token losses (one small all-gather).
        final long waitStartNs = System.nanoTime();
        denseBuckets.await();
        jobMetrics.reduce(model.tokenLosses(), model.crossEntropy(), model.auxLoss(), model.zLoss(),
            model.droppedTokens(), stopRequested);
        final double loss = jobMetrics.loss();
        stopAgreed = jobMetrics.stopRequested();
        metrics.gradientWaitNs = System.nanoTime() - waitStartNs;
        metrics.expertWaitNs = model.expertWaitNs();

        // 5. Clip the global gradient norm (with K > 1, one tiny all-gather adds the other members' experts),
        //    then the AdamW update (both spread over the model's threads).
        final double gradNorm = globalGradNorm();
        if (!Double.isFinite(gradNorm) || !Double.isFinite(loss)) {
            throw new TrainingDivergedException(plan.step() + 1, loss, gradNorm, lr);
        }
        clipFactor = (float) optimizer.config().clipCoefficient(gradNorm);
        optimizer.beginStep(lr);
        model.parallel().run(updateTask);

        // 6. MoE balancing: the auxiliary-loss-free bias follows this batch's expert load.
        model.updateBalancingBias();

        completedSteps++;
        lastLr = lr;
        record(loss, lr, gradNorm, System.nanoTime() - startNs);
        return metrics;
    }

    /** Saves the current state (asynchronously when the writer is); returns how long training waited. */
    public SaveTicket saveCheckpoint() {
        final CheckpointWriter.Snapshot snapshot = checkpoints.begin(completedSteps);
        TrainingState.put(snapshot, this);
        return checkpoints.commit(snapshot);
    }

    /** The checkpoints committed so far by {@link #train}, oldest first. */
    public List<SaveResult> savedCheckpoints() {
        return saved;
    }

    /**
     * Asks {@link #train} to stop after the current step and save a checkpoint; safe from any thread. In a
     * job, the request travels with the step's loss, so every rank stops after the same step (the first
     * step whose reduction saw it on any rank).
     */
    public void requestStop() {
        stopRequested = true;
        if (!groups.distributed()) {
            stopAgreed = true; // read by the training thread; one process needs no agreement
        }
    }

    /** The global L2 norm of the gradients, summed over AdamW's fixed chunks so any thread count gives the same bits. */
    private double globalGradNorm() {
        model.parallel().run(normTask);
        double sum = 0;
        for (final double chunkSum : normChunkSums) {
            sum += chunkSum;
        }
        if (groups.distributed() && parallel.expertParallel() > 1) {
            // the sum covers the replicated tensors (equal on every rank) and this rank's own experts: add the other
            // members' experts (one tiny all-gather over the expert-parallel group, summed in member order)
            double own = 0;
            for (final TensorView t : model.tensors()) {
                if (MoeModel.expertOf(t) >= 0 && model.ownsTensor(t)) {
                    own += AdamW.sumOfSquares(model.grads(), t.offset(), t.offset() + t.length());
                }
            }
            expertSquares[groups.experts().rank()] = (float) own;
            groups.experts().urgent().allGather(expertSquares, 0, 1, null);
            sum -= own;
            for (final float share : expertSquares) {
                sum += share;
            }
        }
        return Math.sqrt(sum);
    }

    private void normStage(final int worker, final int workers) {
        final int chunks = normChunkSums.length;
        final float[] grads = model.grads();
        final int end = Parallel.start(chunks, worker + 1, workers, 1);
        for (int c = Parallel.start(chunks, worker, workers, 1); c < end; c++) {
            normChunkSums[c] = optimizer.normChunkSumOfSquares(grads, c);
        }
    }

    private void updateStage(final int worker, final int workers) {
        final int slab = optimizer.slabLength();
        final int from = Parallel.start(slab, worker, workers, 16);
        final int to = Parallel.start(slab, worker + 1, workers, 16);
        if (clipFactor < 1f) {
            optimizer.scaleRange(model.grads(), from, to, clipFactor);
        }
        optimizer.updateRange(model.params(), model.grads(), from, to);
    }

    private void record(final double loss, final double lr, final double gradNorm, final long stepTimeNs) {
        final StepMetrics m = metrics;
        m.step = completedSteps;
        m.loss = loss;
        m.crossEntropy = jobMetrics.crossEntropy();
        m.auxLoss = jobMetrics.auxLoss();
        m.zLoss = jobMetrics.zLoss();
        m.lr = lr;
        m.stageIndex = plan.stageIndex();
        m.stageName = plan.stageName();
        m.maxDifficulty = plan.maxDifficulty();
        m.gradNorm = gradNorm;
        m.stepTimeNs = stepTimeNs;
        m.tokensPerSecond = config.batchSize() * (double) model.config().seqLen() / (stepTimeNs / 1e9);
        m.samplesConsumed = plan.samplesConsumed();
        m.tokensConsumed = plan.tokensConsumed();
        System.arraycopy(model.expertLoad(), 0, m.expertLoad, 0, m.expertLoad.length);
        m.droppedTokens = jobMetrics.droppedTokens();
        m.checkpointStallNs = 0;
        m.evalLoss = Double.NaN;
    }

    private LrSchedule schedule(final TrainerConfig c, final CurriculumConfig curriculumConfig) {
        final LrSchedule base = switch (c.lrSchedule()) {
            case CONSTANT -> LrSchedule.constant(c.lr());
            case COSINE -> LrSchedule.warmupCosine(c.lr(), 0, c.planSteps(), c.minLr());
            case CURRICULUM -> {
                if (curriculumConfig.kind() != CurriculumConfig.Kind.STAGED) {
                    throw new IllegalArgumentException("lrSchedule=curriculum needs a staged curriculum (curriculum="
                        + curriculumConfig.kind().name().toLowerCase() + " sets no learning rate); choose --lr-schedule "
                        + "constant or cosine");
                }
                // The stage's rate for the step just planned: next() runs before lr() in trainStep.
                yield step -> plan.lr();
            }
        };
        return c.warmupSteps() > 0 ? LrSchedule.withWarmup(base, c.warmupSteps()) : base;
    }

    void restoreCompletedSteps(final long steps) {
        this.completedSteps = steps;
    }

    void restoreLastLr(final double lr) {
        this.lastLr = lr;
    }

    public MoeModel model() {
        return model;
    }

    public AdamW optimizer() {
        return optimizer;
    }

    public CurriculumScheduler curriculum() {
        return curriculum;
    }

    public TrainerConfig config() {
        return config;
    }

    /** This rank's place in the job ({@link ParallelConfig#SINGLE} in one process). */
    public ParallelConfig parallelConfig() {
        return parallel;
    }

    /**
     * The buckets the dense gradients are all-reduced in; with FP8 compression they hold this rank's
     * error-feedback residual ({@link GradientBuckets#copyResidualTo}), which a checkpoint must save for
     * a bitwise resume.
     */
    public GradientBuckets denseGradientBuckets() {
        return denseBuckets;
    }

    /** The job's communicators (all null in one process). */
    public ParallelGroups groups() {
        return groups;
    }

    /** Steps completed so far (including those before a resume). */
    public long completedSteps() {
        return completedSteps;
    }

    /** The learning rate of the last completed step (0 before the first). */
    public double lastLr() {
        return lastLr;
    }

    @Override
    public void close() {
        model.close();
        groups.close();
    }
}
