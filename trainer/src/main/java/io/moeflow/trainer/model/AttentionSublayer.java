package io.moeflow.trainer.model;

import static io.moeflow.trainer.model.LayerContext.from;
import static io.moeflow.trainer.model.LayerContext.to;

import io.moeflow.trainer.kernels.Ops;

/**
 * The attention half of a block: resMid = x + proj(causalSelfAttention(ln1(x))), x = res[l].
 * Stages are pre-built tasks; each splits token rows, weight-gradient rows, channels or (sequence, head) pairs over
 * the workers.
 */
final class AttentionSublayer {
    private final LayerContext ctx;
    private final Ops ops;
    private final ModelConfig c;
    private final Parallel.Task ln1Task = this::ln1Stage;
    private final Parallel.Task qkvTask = this::qkvStage;
    private final Parallel.Task attentionTask = this::attentionStage;
    private final Parallel.Task projTask = this::projStage;
    private final Parallel.Task projBackTask = this::projBackStage;
    private final Parallel.Task attentionBackTask = this::attentionBackStage;
    private final Parallel.Task qkvBackTask = this::qkvBackStage;
    private final Parallel.Task ln1ParamsTask = this::ln1ParamsStage;

    private Workspace ws;
    private int layer;
    private ParameterLayout.Block b;

    AttentionSublayer(final LayerContext ctx) {
        this.ctx = ctx;
        this.ops = ctx.ops;
        this.c = ctx.config;
    }

    // Forward. res[l]: [N, C] -> ln1: [N, C] -> qkv: [N, 3C] -> attOut: [N, C] (+ probs [B*H, T, T])
    //          -> resMid[l] = res[l] + attOut Wproj^T + bproj: [N, C]
    void forward(final Workspace w, final int l) {
        bind(w, l);
        ctx.parallel.run(ln1Task);
        ctx.parallel.run(qkvTask);
        ctx.parallel.run(attentionTask);
        ctx.parallel.run(projTask);
    }

    // Backward. dres = dL/dresMid[l]: [N, C] in, dL/dres[l] out (in place); writes the grads of ln1, qkv, proj.
    void backward(final Workspace w, final int l) {
        bind(w, l);
        ctx.parallel.run(projBackTask);
        ctx.parallel.run(attentionBackTask);
        ctx.parallel.run(qkvBackTask);
        ctx.parallel.run(ln1ParamsTask);
    }

    private void bind(final Workspace w, final int l) {
        ws = w;
        layer = l;
        b = ctx.layout.blocks[l];
    }

    private int nc() {
        return layer * ws.tokens * c.channels();
    }

    private void ln1Stage(final int w, final int workers) {
        final int n = ws.tokens;
        ops.layerNormForward(ws.res, nc(), ctx.params, b.ln1Weight, b.ln1Bias, ws.ln1, nc(), ws.ln1Mean, ws.ln1Rstd,
            layer * n, c.channels(), from(n, w, workers, 1), to(n, w, workers, 1));
    }

    // Forward GEMMs split token rows (in blocks of 4) and each worker packs the whole W^T: splitting output columns
    // would make both workers write one cache line of every output row.
    private void qkvStage(final int w, final int workers) {
        final int C = c.channels();
        final int n0 = from(ws.tokens, w, workers, 4);
        final int n1 = to(ws.tokens, w, workers, 4);
        if (n0 < n1) {
            ops.linearForward(ws.ln1, nc() + n0 * C, ctx.params, b.qkvWeight, b.qkvBias, ws.qkv, 3 * nc() + n0 * 3 * C,
                n1 - n0, C, 3 * C, 0, 3 * C, ctx.scratch[w]);
        }
    }

    private void attentionStage(final int w, final int workers) {
        final int pairs = ws.batch * c.heads();
        final int t = c.seqLen();
        ops.attentionForward(ws.qkv, 3 * nc(), ws.attOut, nc(), ws.probs, layer * pairs * t * t, t, c.channels(),
            c.heads(), from(pairs, w, workers, 1), to(pairs, w, workers, 1), ctx.scratch[w]);
    }

    private void projStage(final int w, final int workers) {
        final int C = c.channels();
        final int n0 = from(ws.tokens, w, workers, 4);
        final int n1 = to(ws.tokens, w, workers, 4);
        if (n0 < n1) {
            ops.linearForward(ws.attOut, nc() + n0 * C, ctx.params, b.projWeight, b.projBias, ws.projOut, n0 * C,
                n1 - n0, C, C, 0, C, ctx.scratch[w]);
            // resMid = res + projOut
            ops.add(ws.res, nc() + n0 * C, ws.projOut, n0 * C, ws.resMid, nc() + n0 * C, (n1 - n0) * C);
        }
    }

    private void projBackStage(final int w, final int workers) {
        final int C = c.channels();
        final int n = ws.tokens;
        // dWproj = dres^T attOut, dbproj = sum dres   (rows o of Wproj)
        ops.linearBackwardWeight(ws.dres, 0, ws.attOut, nc(), ctx.grads, b.projWeight, b.projBias, n, C, C,
            from(C, w, workers, 16), to(C, w, workers, 16));
        // datt = dres Wproj   (rows)
        ops.linearBackwardInput(ws.dres, 0, ctx.params, b.projWeight, ws.datt, 0, C, C, from(n, w, workers, 1),
            to(n, w, workers, 1), false);
    }

    private void attentionBackStage(final int w, final int workers) {
        final int pairs = ws.batch * c.heads();
        final int t = c.seqLen();
        ops.attentionBackward(ws.datt, 0, ws.qkv, 3 * nc(), ws.probs, layer * pairs * t * t, ws.dqkv, 0, t,
            c.channels(), c.heads(), from(pairs, w, workers, 1), to(pairs, w, workers, 1), ctx.scratch[w]);
    }

    private void qkvBackStage(final int w, final int workers) {
        final int C = c.channels();
        final int n = ws.tokens;
        // dWqkv = dqkv^T ln1, dbqkv = sum dqkv   (rows o of Wqkv)
        ops.linearBackwardWeight(ws.dqkv, 0, ws.ln1, nc(), ctx.grads, b.qkvWeight, b.qkvBias, n, C, 3 * C,
            from(3 * C, w, workers, 16), to(3 * C, w, workers, 16));
        // dln1 = dqkv Wqkv;  dres += LN1'(dln1)   (rows)
        final int n0 = from(n, w, workers, 1);
        final int n1 = to(n, w, workers, 1);
        ops.linearBackwardInput(ws.dqkv, 0, ctx.params, b.qkvWeight, ws.dln, 0, C, 3 * C, n0, n1, false);
        ops.layerNormBackwardInput(ws.dln, 0, ws.res, nc(), ctx.params, b.ln1Weight, ws.ln1Mean, ws.ln1Rstd,
            layer * n, ws.dres, 0, C, n0, n1, true);
    }

    private void ln1ParamsStage(final int w, final int workers) {
        final int C = c.channels();
        ops.layerNormBackwardParams(ws.dln, 0, ws.res, nc(), ws.ln1Mean, ws.ln1Rstd, layer * ws.tokens, ctx.grads,
            b.ln1Weight, b.ln1Bias, ws.tokens, C, from(C, w, workers, 16), to(C, w, workers, 16));
    }
}
