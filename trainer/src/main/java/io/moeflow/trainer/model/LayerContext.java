package io.moeflow.trainer.model;

import io.moeflow.trainer.kernels.Ops;
import io.moeflow.trainer.parallel.ParallelGroups;

/**
 * What every sublayer needs: the config, where tensors live, the kernels, the worker pool, the two slabs, one
 * scratch array per worker and the job's communicators.
 */
final class LayerContext {
    final ModelConfig config;
    final ParameterLayout layout;
    final Ops ops;
    final Parallel parallel;
    final float[] params;
    final float[] grads;
    final float[][] scratch;
    /** The job's communicators; {@link ParallelGroups#distributed()} is false in one process. */
    final ParallelGroups groups;

    LayerContext(final ModelConfig config, final ParameterLayout layout, final Ops ops, final Parallel parallel,
        final float[] params, final float[] grads, final int scratchFloats, final ParallelGroups groups) {
        this.config = config;
        this.layout = layout;
        this.ops = ops;
        this.parallel = parallel;
        this.params = params;
        this.grads = grads;
        this.scratch = new float[parallel.threads()][scratchFloats];
        this.groups = groups;
    }

    /** First element of worker w's share of [0, total), in blocks of align. */
    static int from(final int total, final int w, final int workers, final int align) {
        return Parallel.start(total, w, workers, align);
    }

    /** End (exclusive) of worker w's share of [0, total). */
    static int to(final int total, final int w, final int workers, final int align) {
        return Parallel.start(total, w + 1, workers, align);
    }

    /** Packed W^T panel [in, out + 16] plus the padded bias and one spare row of out + 16 (FastOps.linearForward). */
    private static long linear(final int in, final int out) {
        return (long) in * (out + 16) + 2L * (out + 16);
    }

    /**
     * Scratch floats the kernels need for this config and batch: the packed weight panel of the widest linear layer
     * (see {@link Ops#linearForward}), the attention scratch and the router's transposed weight.
     */
    static int scratchFloats(final ModelConfig c) {
        final int C = c.channels();
        final int F = c.expertHidden();
        final int T = c.seqLen();
        final int D = c.headDim();
        long need = linear(C, 3 * C);
        need = Math.max(need, linear(C, c.vocabSize()));
        need = Math.max(need, linear(C, F));
        need = Math.max(need, linear(F, C));
        need = Math.max(need, linear(C, c.experts()));
        need = Math.max(need, (long) T * T + 2L * D * T + 2L * T + 64);
        if (need > Integer.MAX_VALUE - 16) {
            throw new IllegalArgumentException("kernel scratch of " + need + " floats is too large: reduce channels, " +
                "vocabSize or seqLen");
        }
        return (int) need;
    }
}
