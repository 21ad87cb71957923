package io.moeflow.trainer.kernels;

/**
 * The plain reference kernels: scalar loops written for reading, double accumulators, straight from the formulas.
 * The fast kernels and the finite-difference gradient checks are held to these.
 */
public final class ReferenceOps implements Ops {
    /** The single instance (stateless). */
    public static final ReferenceOps INSTANCE = new ReferenceOps();

    private static final double INV_SQRT_2 = 1.0 / Math.sqrt(2.0);
    private static final double INV_SQRT_2PI = 1.0 / Math.sqrt(2.0 * Math.PI);

    private ReferenceOps() {
    }

    // x: [N, C] = wte[token] + wpe[position]
    @Override
    public void embeddingForward(final int[] tokens, final float[] p, final int wteOff, final int wpeOff,
        final float[] x, final int seqLen, final int channels, final int n0, final int n1) {
        for (int n = n0; n < n1; n++) {
            final int tok = tokens[n];
            final int pos = n % seqLen;
            for (int c = 0; c < channels; c++) {
                x[n * channels + c] = p[wteOff + tok * channels + c] + p[wpeOff + pos * channels + c];
            }
        }
    }

    // dwte[v, c] = sum_{n: tok[n]=v} dx[n, c];  dwpe[t, c] = sum_{n: n%T=t} dx[n, c]
    @Override
    public void embeddingBackward(final int[] tokens, final float[] dx, final int rows, final float[] g,
        final int wteOff, final int wpeOff, final int vocab, final int seqLen, final int channels, final int c0,
        final int c1) {
        for (int v = 0; v < vocab; v++) {
            for (int c = c0; c < c1; c++) {
                g[wteOff + v * channels + c] = 0f;
            }
        }
        for (int t = 0; t < seqLen; t++) {
            for (int c = c0; c < c1; c++) {
                g[wpeOff + t * channels + c] = 0f;
            }
        }
        for (int n = 0; n < rows; n++) {
            final int tok = tokens[n];
            final int pos = n % seqLen;
            for (int c = c0; c < c1; c++) {
                g[wteOff + tok * channels + c] += dx[n * channels + c];
                g[wpeOff + pos * channels + c] += dx[n * channels + c];
            }
        }
    }

    // y = (x - mean) / sqrt(var + eps) * gamma + beta, per row
    @Override
    public void layerNormForward(final float[] x, final int xOff, final float[] p, final int gammaOff,
        final int betaOff, final float[] y, final int yOff, final float[] mean, final float[] rstd, final int statOff,
        final int channels, final int n0, final int n1) {
        for (int n = n0; n < n1; n++) {
            final int row = xOff + n * channels;
            double sum = 0;
            for (int c = 0; c < channels; c++) {
                sum += x[row + c];
            }
            final double m = sum / channels;
            double var = 0;
            for (int c = 0; c < channels; c++) {
                final double d = x[row + c] - m;
                var += d * d;
            }
            final double r = 1.0 / Math.sqrt(var / channels + LN_EPS);
            for (int c = 0; c < channels; c++) {
                final double xhat = (x[row + c] - m) * r;
                y[yOff + n * channels + c] = (float) (xhat * p[gammaOff + c] + p[betaOff + c]);
            }
            mean[statOff + n] = (float) m;
            rstd[statOff + n] = (float) r;
        }
    }

    // dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)),  dxhat = dy * gamma
    @Override
    public void layerNormBackwardInput(final float[] dy, final int dyOff, final float[] x, final int xOff,
        final float[] p, final int gammaOff, final float[] mean, final float[] rstd, final int statOff,
        final float[] dx, final int dxOff, final int channels, final int n0, final int n1, final boolean accumulate) {
        for (int n = n0; n < n1; n++) {
            final double m = mean[statOff + n];
            final double r = rstd[statOff + n];
            double sumDxhat = 0;
            double sumDxhatXhat = 0;
            for (int c = 0; c < channels; c++) {
                final double xhat = (x[xOff + n * channels + c] - m) * r;
                final double dxhat = (double) dy[dyOff + n * channels + c] * p[gammaOff + c];
                sumDxhat += dxhat;
                sumDxhatXhat += dxhat * xhat;
            }
            final double meanDxhat = sumDxhat / channels;
            final double meanDxhatXhat = sumDxhatXhat / channels;
            for (int c = 0; c < channels; c++) {
                final double xhat = (x[xOff + n * channels + c] - m) * r;
                final double dxhat = (double) dy[dyOff + n * channels + c] * p[gammaOff + c];
                final double v = r * (dxhat - meanDxhat - xhat * meanDxhatXhat);
                final int i = dxOff + n * channels + c;
                dx[i] = accumulate ? (float) (dx[i] + v) : (float) v;
            }
        }
    }

    // dgamma[c] = sum_n dy[n, c] * xhat[n, c];  dbeta[c] = sum_n dy[n, c]
    @Override
    public void layerNormBackwardParams(final float[] dy, final int dyOff, final float[] x, final int xOff,
        final float[] mean, final float[] rstd, final int statOff, final float[] g, final int dgammaOff,
        final int dbetaOff, final int rows, final int channels, final int c0, final int c1) {
        for (int c = c0; c < c1; c++) {
            double dgamma = 0;
            double dbeta = 0;
            for (int n = 0; n < rows; n++) {
                final double xhat = (x[xOff + n * channels + c] - mean[statOff + n]) * (double) rstd[statOff + n];
                dgamma += dy[dyOff + n * channels + c] * xhat;
                dbeta += dy[dyOff + n * channels + c];
            }
            g[dgammaOff + c] = (float) dgamma;
            g[dbetaOff + c] = (float) dbeta;
        }
    }

    // y[n, o] = b[o] + sum_i x[n, i] * W[o, i]
    @Override
    public void linearForward(final float[] x, final int xOff, final float[] w, final int wOff, final int bOff,
        final float[] y, final int yOff, final int rows, final int in, final int out, final int o0, final int o1,
        final float[] scratch) {
        for (int n = 0; n < rows; n++) {
            for (int o = o0; o < o1; o++) {
                double sum = bOff >= 0 ? w[bOff + o] : 0.0;
                for (int i = 0; i < in; i++) {
                    sum += (double) x[xOff + n * in + i] * w[wOff + o * in + i];
                }
                y[yOff + n * out + o] = (float) sum;
            }
        }
    }

    // dx[n, i] = sum_o dy[n, o] * W[o, i]
    @Override
    public void linearBackwardInput(final float[] dy, final int dyOff, final float[] w, final int wOff,
        final float[] dx, final int dxOff, final int in, final int out, final int n0, final int n1,
        final boolean accumulate) {
        for (int n = n0; n < n1; n++) {
            for (int i = 0; i < in; i++) {
                double sum = 0;
                for (int o = 0; o < out; o++) {
                    sum += (double) dy[dyOff + n * out + o] * w[wOff + o * in + i];
                }
                final int j = dxOff + n * in + i;
                dx[j] = accumulate ? (float) (dx[j] + sum) : (float) sum;
            }
        }
    }

    // dW[o, i] = sum_n dy[n, o] * x[n, i];  db[o] = sum_n dy[n, o]
    @Override
    public void linearBackwardWeight(final float[] dy, final int dyOff, final float[] x, final int xOff,
        final float[] g, final int dwOff, final int dbOff, final int rows, final int in, final int out, final int o0,
        final int o1) {
        for (int o = o0; o < o1; o++) {
            for (int i = 0; i < in; i++) {
                double sum = 0;
                for (int n = 0; n < rows; n++) {
                    sum += (double) dy[dyOff + n * out + o] * x[xOff + n * in + i];
                }
                g[dwOff + o * in + i] = (float) sum;
            }
            if (dbOff >= 0) {
                double sum = 0;
                for (int n = 0; n < rows; n++) {
                    sum += dy[dyOff + n * out + o];
                }
                g[dbOff + o] = (float) sum;
            }
        }
    }

    // gelu(h) = h * Phi(h) = 0.5 h (1 + erf(h / sqrt 2))
    @Override
    public void geluForward(final float[] h, final int hOff, final float[] a, final int aOff, final int count) {
        for (int j = 0; j < count; j++) {
            final double v = h[hOff + j];
            a[aOff + j] = (float) (0.5 * v * (1.0 + Erf.erf(v * INV_SQRT_2)));
        }
    }

    // gelu'(h) = Phi(h) + h * phi(h)
    @Override
    public void geluBackward(final float[] h, final int hOff, final float[] da, final int daOff, final float[] dh,
        final int dhOff, final int count) {
        for (int j = 0; j < count; j++) {
            final double v = h[hOff + j];
            final double cdf = 0.5 * (1.0 + Erf.erf(v * INV_SQRT_2));
            final double pdf = Math.exp(-0.5 * v * v) * INV_SQRT_2PI;
            dh[dhOff + j] = (float) (da[daOff + j] * (cdf + v * pdf));
        }
    }

    // probs[p, t, s] = softmax_{s <= t}(q_t . k_s / sqrt(D));  out_t = sum_s probs[p, t, s] v_s
    @Override
    public void attentionForward(final float[] qkv, final int qkvOff, final float[] out, final int outOff,
        final float[] probs, final int probsOff, final int seqLen, final int channels, final int heads, final int p0,
        final int p1, final float[] scratch) {
        final int d = channels / heads;
        final int stride = 3 * channels;
        final double scale = 1.0 / Math.sqrt(d);
        for (int p = p0; p < p1; p++) {
            final int b = p / heads;
            final int h = p % heads;
            final int rowBase = qkvOff + b * seqLen * stride;
            final int q = h * d;
            final int k = channels + h * d;
            final int v = 2 * channels + h * d;
            final int pr = probsOff + p * seqLen * seqLen;
            for (int t = 0; t < seqLen; t++) {
                double max = Double.NEGATIVE_INFINITY;
                for (int s = 0; s <= t; s++) {
                    double dot = 0;
                    for (int i = 0; i < d; i++) {
                        dot += (double) qkv[rowBase + t * stride + q + i] * qkv[rowBase + s * stride + k + i];
                    }
                    scratch[s] = (float) (dot * scale);
                    max = Math.max(max, dot * scale);
                }
                double sum = 0;
                for (int s = 0; s <= t; s++) {
                    sum += Math.exp(scratch[s] - max);
                }
                for (int s = 0; s < seqLen; s++) {
                    probs[pr + t * seqLen + s] = s <= t ? (float) (Math.exp(scratch[s] - max) / sum) : 0f;
                }
                for (int i = 0; i < d; i++) {
                    double acc = 0;
                    for (int s = 0; s <= t; s++) {
                        acc += (double) probs[pr + t * seqLen + s] * qkv[rowBase + s * stride + v + i];
                    }
                    out[outOff + (b * seqLen + t) * channels + h * d + i] = (float) acc;
                }
            }
        }
    }

    // dP[t,s] = dout_t . v_s;  dS = P * (dP - sum_s P dP);  dq_t = scale sum_s dS[t,s] k_s;
    // dk_s = scale sum_t dS[t,s] q_t;  dv_s = sum_t P[t,s] dout_t
    @Override
    public void attentionBackward(final float[] dout, final int doutOff, final float[] qkv, final int qkvOff,
        final float[] probs, final int probsOff, final float[] dqkv, final int dqkvOff, final int seqLen,
        final int channels, final int heads, final int p0, final int p1, final float[] scratch) {
        final int d = channels / heads;
        final int stride = 3 * channels;
        final double scale = 1.0 / Math.sqrt(d);
        final float[] ds = scratch; // [T, T] dS
        for (int p = p0; p < p1; p++) {
            final int b = p / heads;
            final int h = p % heads;
            final int rowBase = qkvOff + b * seqLen * stride;
            final int dRowBase = dqkvOff + b * seqLen * stride;
            final int q = h * d;
            final int k = channels + h * d;
            final int v = 2 * channels + h * d;
            final int pr = probsOff + p * seqLen * seqLen;
            final int dout0 = doutOff + b * seqLen * channels + h * d;
            for (int t = 0; t < seqLen; t++) {
                double rowDot = 0;
                for (int s = 0; s <= t; s++) {
                    double dp = 0;
                    for (int i = 0; i < d; i++) {
                        dp += (double) dout[dout0 + t * channels + i] * qkv[rowBase + s * stride + v + i];
                    }
                    ds[t * seqLen + s] = (float) dp;
                    rowDot += dp * probs[pr + t * seqLen + s];
                }
                for (int s = 0; s <= t; s++) {
                    ds[t * seqLen + s] = (float) (probs[pr + t * seqLen + s] * (ds[t * seqLen + s] - rowDot));
                }
            }
            for (int t = 0; t < seqLen; t++) {
                for (int i = 0; i < d; i++) {
                    double dq = 0;
                    for (int s = 0; s <= t; s++) {
                        dq += (double) ds[t * seqLen + s] * qkv[rowBase + s * stride + k + i];
                    }
                    dqkv[dRowBase + t * stride + q + i] = (float) (dq * scale);
                }
            }
            for (int s = 0; s < seqLen; s++) {
                for (int i = 0; i < d; i++) {
                    double dk = 0;
                    double dv = 0;
                    for (int t = s; t < seqLen; t++) {
                        dk += (double) ds[t * seqLen + s] * qkv[rowBase + t * stride + q + i];
                        dv += (double) probs[pr + t * seqLen + s] * dout[dout0 + t * channels + i];
                    }
                    dqkv[dRowBase + s * stride + k + i] = (float) (dk * scale);
                    dqkv[dRowBase + s * stride + v + i] = (float) dv;
                }
            }
        }
    }

    // p = softmax(logits);  loss = -log p[target]
    @Override
    public void crossEntropyForward(final float[] logits, final int vocab, final int[] targets, final float[] losses,
        final int n0, final int n1) {
        for (int n = n0; n < n1; n++) {
            final int row = n * vocab;
            double max = Double.NEGATIVE_INFINITY;
            for (int v = 0; v < vocab; v++) {
                max = Math.max(max, logits[row + v]);
            }
            double sum = 0;
            for (int v = 0; v < vocab; v++) {
                sum += Math.exp(logits[row + v] - max);
            }
            losses[n] = (float) (Math.log(sum) + max - logits[row + targets[n]]);
            for (int v = 0; v < vocab; v++) {
                logits[row + v] = (float) (Math.exp(logits[row + v] - max) / sum);
            }
        }
    }

    // dlogits = scale * (p - onehot(target))
    @Override
    public void crossEntropyBackward(final float[] probs, final int vocab, final int[] targets, final float scale,
        final int n0, final int n1) {
        for (int n = n0; n < n1; n++) {
            for (int v = 0; v < vocab; v++) {
                final double indicator = v == targets[n] ? 1.0 : 0.0;
                probs[n * vocab + v] = (float) (scale * (probs[n * vocab + v] - indicator));
            }
        }
    }

    @Override
    public void routerForward(final float[] x, final int xOff, final float[] p, final int wrOff, final float[] bias,
        final int biasOff, final boolean sigmoid, final int channels, final int experts, final int topK,
        final float[] logits, final int logitsOff, final float[] scores, final int scoresOff, final float[] lse,
        final int lseOff, final int[] selected, final int selectedOff, final float[] gates, final int gatesOff,
        final int n0, final int n1, final float[] scratch) {
        for (int n = n0; n < n1; n++) {
            final int lrow = logitsOff + n * experts;
            double max = Double.NEGATIVE_INFINITY;
            for (int e = 0; e < experts; e++) {
                double dot = 0;
                for (int c = 0; c < channels; c++) {
                    dot += (double) x[xOff + n * channels + c] * p[wrOff + e * channels + c];
                }
                logits[lrow + e] = (float) dot;
                max = Math.max(max, logits[lrow + e]);
            }
            double sum = 0;
            for (int e = 0; e < experts; e++) {
                sum += Math.exp(logits[lrow + e] - max);
            }
            lse[lseOff + n] = (float) (max + Math.log(sum));
            for (int e = 0; e < experts; e++) {
                scores[scoresOff + n * experts + e] = sigmoid
                    ? (float) (1.0 / (1.0 + Math.exp(-logits[lrow + e])))
                    : (float) (Math.exp(logits[lrow + e] - max) / sum);
            }
            Routing.selectTopK(scores, scoresOff + n * experts, bias, biasOff, experts, topK, selected,
                selectedOff + n * topK);
            double selectedSum = GATE_EPS;
            for (int k = 0; k < topK; k++) {
                selectedSum += scores[scoresOff + n * experts + selected[selectedOff + n * topK + k]];
            }
            for (int k = 0; k < topK; k++) {
                final double s = scores[scoresOff + n * experts + selected[selectedOff + n * topK + k]];
                gates[gatesOff + n * topK + k] = topK > 1 ? (float) (s / selectedSum) : (float) s;
            }
        }
    }

    // ds_e = d loss / d score_e (aux via the normalised score, gates via their normalisation), then
    // softmax: dlogit = s * (ds - sum_e ds_e s_e);  sigmoid: dlogit = ds * s * (1 - s);  z-loss: 2 zScale lse softmax
    @Override
    public void routerBackward(final float[] logits, final int logitsOff, final float[] scores, final int scoresOff,
        final float[] lse, final int lseOff, final int[] selected, final int selectedOff, final float[] gates,
        final int gatesOff, final float[] dgates, final int dgatesOff, final float[] dAuxScore, final float zScale,
        final boolean sigmoid, final int experts, final int topK, final float[] dlogits, final int dlogitsOff,
        final int n0, final int n1) {
        for (int n = n0; n < n1; n++) {
            final int srow = scoresOff + n * experts;
            final int sel = selectedOff + n * topK;
            double total = 0;
            double auxDot = 0;
            if (sigmoid && dAuxScore != null) {
                for (int e = 0; e < experts; e++) {
                    total += scores[srow + e];
                }
                for (int e = 0; e < experts; e++) {
                    auxDot += dAuxScore[e] * (scores[srow + e] / total);
                }
            }
            double selectedSum = GATE_EPS;
            double gdg = 0;
            for (int k = 0; k < topK; k++) {
                selectedSum += scores[srow + selected[sel + k]];
                gdg += (double) gates[gatesOff + n * topK + k] * dgates[dgatesOff + n * topK + k];
            }
            double dot = 0;
            for (int e = 0; e < experts; e++) {
                dot += dScore(e, scores, srow, selected, sel, dgates, dgatesOff + n * topK, dAuxScore, sigmoid, total,
                    auxDot, selectedSum, gdg, topK) * scores[srow + e];
            }
            final int lrow = logitsOff + n * experts;
            for (int e = 0; e < experts; e++) {
                final double ds = dScore(e, scores, srow, selected, sel, dgates, dgatesOff + n * topK, dAuxScore,
                    sigmoid, total, auxDot, selectedSum, gdg, topK);
                final double s = scores[srow + e];
                double dlogit = sigmoid ? ds * s * (1 - s) : s * (ds - dot);
                if (zScale != 0f) {
                    final double l = lse[lseOff + n];
                    dlogit += 2.0 * zScale * l * Math.exp(logits[lrow + e] - l);
                }
                dlogits[dlogitsOff + n * experts + e] = (float) dlogit;
            }
        }
    }

    // d loss / d score_e of one token
    private static double dScore(final int e, final float[] scores, final int srow, final int[] selected,
        final int sel, final float[] dgates, final int dgRow, final float[] dAuxScore, final boolean sigmoid,
        final double total, final double auxDot, final double selectedSum, final double gdg, final int topK) {
        double ds = 0;
        if (dAuxScore != null) {
            // aux: through s_e for softmax, through s_e / sum(s) for sigmoid
            ds += sigmoid ? (dAuxScore[e] - auxDot) / total : dAuxScore[e];
        }
        for (int k = 0; k < topK; k++) {
            if (selected[sel + k] == e) {
                // gates: g_k = s_k / (sum_sel s + eps) for K > 1, g = s for K = 1
                ds += topK > 1 ? (dgates[dgRow + k] - gdg) / selectedSum : dgates[dgRow + k];
            }
        }
        return ds;
    }

    @Override
    public void gatherRows(final float[] src, final int srcOff, final int[] rowIndex, final int indexOff,
        final float[] dst, final int dstOff, final int channels, final int r0, final int r1) {
        for (int r = r0; r < r1; r++) {
            final int from = srcOff + rowIndex[indexOff + r] * channels;
            for (int c = 0; c < channels; c++) {
                dst[dstOff + r * channels + c] = src[from + c];
            }
        }
    }

    @Override
    public void combineForward(final float[] y, final int yOff, final int[] slots, final int slotsOff,
        final float[] weights, final int weightsOff, final int slotCount, final float[] residual,
        final int residualOff, final float[] out, final int outOff, final int channels, final int n0, final int n1) {
        for (int n = n0; n < n1; n++) {
            for (int c = 0; c < channels; c++) {
                double sum = residual[residualOff + n * channels + c];
                for (int j = 0; j < slotCount; j++) {
                    final int slot = slots[slotsOff + n * slotCount + j];
                    if (slot >= 0) {
                        sum += (double) weights[weightsOff + n * slotCount + j] * y[yOff + slot * channels + c];
                    }
                }
                out[outOff + n * channels + c] = (float) sum;
            }
        }
    }

    @Override
    public void combineBackward(final float[] dout, final int doutOff, final float[] y, final int yOff,
        final int[] slots, final int slotsOff, final float[] weights, final int weightsOff, final int slotCount,
        final int gatedSlots, final float[] dy, final int dyOff, final float[] dgates, final int dgatesOff,
        final int channels, final int n0, final int n1) {
        for (int n = n0; n < n1; n++) {
            for (int j = 0; j < slotCount; j++) {
                final int slot = slots[slotsOff + n * slotCount + j];
                double dot = 0;
                if (slot >= 0) {
                    final double w = weights[weightsOff + n * slotCount + j];
                    for (int c = 0; c < channels; c++) {
                        dy[dyOff + slot * channels + c] = (float) (w * dout[doutOff + n * channels + c]);
                        dot += (double) dout[doutOff + n * channels + c] * y[yOff + slot * channels + c];
                    }
                }
                if (j < gatedSlots) {
                    dgates[dgatesOff + n * gatedSlots + j] = (float) dot;
                }
            }
        }
    }

    @Override
    public void scatterBackward(final float[] dperm, final int dpermOff, final int[] slots, final int slotsOff,
        final int slotCount, final float[] dx, final int dxOff, final int channels, final int n0, final int n1,
        final boolean accumulate) {
        for (int n = n0; n < n1; n++) {
            for (int c = 0; c < channels; c++) {
                double sum = accumulate ? dx[dxOff + n * channels + c] : 0.0;
                for (int j = 0; j < slotCount; j++) {
                    final int slot = slots[slotsOff + n * slotCount + j];
                    if (slot >= 0) {
                        sum += dperm[dpermOff + slot * channels + c];
                    }
                }
                dx[dxOff + n * channels + c] = (float) sum;
            }
        }
    }

    @Override
    public void add(final float[] a, final int aOff, final float[] b, final int bOff, final float[] y, final int yOff,
        final int count) {
        for (int j = 0; j < count; j++) {
            y[yOff + j] = a[aOff + j] + b[bOff + j];
        }
    }
}
