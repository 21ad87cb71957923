package io.moeflow.trainer.kernels;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * The fast kernels: Vector API (the widest species the CPU has), float accumulation with fused multiply-add.
 * <p>
 * Linear layers never transpose activations: y = x W^T packs the worker's slice of W^T into scratch once per call
 * (a panel [in, o1-o0], reused by every row) and runs a 4-row x 4-vector register tile; dx = dy W and
 * dW = dy^T x read W and x row-major as they are, broadcasting one operand. Every output element is one fma chain in
 * a fixed order, so the 4x4 tiles, their 1-row/1-vector edges and the scalar tails produce the same bits, whatever
 * range a worker is given. Attention packs K^T (and V^T for the backward) per (sequence, head) and works on 4-row
 * blocks of the causal triangle; it needs T and C/H to be multiples of the vector length and otherwise falls back to
 * the reference kernel.
 */
public final class FastOps implements Ops {
    /** The single instance (stateless). */
    public static final FastOps INSTANCE = new FastOps();

    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    private static final int L = S.length();
    private static final Ops REFERENCE = ReferenceOps.INSTANCE;

    private FastOps() {
    }

    private static int roundUp(final int n, final int m) {
        return (n + m - 1) / m * m;
    }

    // ---------------------------------------------------------------- embeddings

    @Override
    public void embeddingForward(final int[] tokens, final float[] p, final int wteOff, final int wpeOff,
        final float[] x, final int seqLen, final int channels, final int n0, final int n1) {
        for (int n = n0; n < n1; n++) {
            add(p, wteOff + tokens[n] * channels, p, wpeOff + n % seqLen * channels, x, n * channels, channels);
        }
    }

    @Override
    public void embeddingBackward(final int[] tokens, final float[] dx, final int rows, final float[] g,
        final int wteOff, final int wpeOff, final int vocab, final int seqLen, final int channels, final int c0,
        final int c1) {
        final int width = c1 - c0;
        if (width <= 0) {
            return;
        }
        for (int v = 0; v < vocab; v++) {
            java.util.Arrays.fill(g, wteOff + v * channels + c0, wteOff + v * channels + c1, 0f);
        }
        for (int t = 0; t < seqLen; t++) {
            java.util.Arrays.fill(g, wpeOff + t * channels + c0, wpeOff + t * channels + c1, 0f);
        }
        for (int n = 0; n < rows; n++) {
            final int src = n * channels + c0;
            final int te = wteOff + tokens[n] * channels + c0;
            final int pe = wpeOff + n % seqLen * channels + c0;
            add(g, te, dx, src, g, te, width);
            add(g, pe, dx, src, g, pe, width);
        }
    }

    // ---------------------------------------------------------------- layer norm

    @Override
    public void layerNormForward(final float[] x, final int xOff, final float[] p, final int gammaOff,
        final int betaOff, final float[] y, final int yOff, final float[] mean, final float[] rstd, final int statOff,
        final int channels, final int n0, final int n1) {
        final int vec = channels / L * L;
        for (int n = n0; n < n1; n++) {
            final int row = xOff + n * channels;
            FloatVector acc = FloatVector.zero(S);
            for (int c = 0; c < vec; c += L) {
                acc = acc.add(FloatVector.fromArray(S, x, row + c));
            }
            float sum = acc.reduceLanes(VectorOperators.ADD);
            for (int c = vec; c < channels; c++) {
                sum += x[row + c];
            }
            final float m = sum / channels;
            FloatVector accVar = FloatVector.zero(S);
            for (int c = 0; c < vec; c += L) {
                final FloatVector d = FloatVector.fromArray(S, x, row + c).sub(m);
                accVar = d.fma(d, accVar);
            }
            float var = accVar.reduceLanes(VectorOperators.ADD);
            for (int c = vec; c < channels; c++) {
                final float d = x[row + c] - m;
                var = Math.fma(d, d, var);
            }
            final float r = (float) (1.0 / Math.sqrt(var / channels + LN_EPS));
            final int out = yOff + n * channels;
            for (int c = 0; c < vec; c += L) {
                final FloatVector xhat = FloatVector.fromArray(S, x, row + c).sub(m).mul(r);
                xhat.fma(FloatVector.fromArray(S, p, gammaOff + c), FloatVector.fromArray(S, p, betaOff + c))
                    .intoArray(y, out + c);
            }
            for (int c = vec; c < channels; c++) {
                y[out + c] = Math.fma((x[row + c] - m) * r, p[gammaOff + c], p[betaOff + c]);
            }
            mean[statOff + n] = m;
            rstd[statOff + n] = r;
        }
    }

    @Override
    public void layerNormBackwardInput(final float[] dy, final int dyOff, final float[] x, final int xOff,
        final float[] p, final int gammaOff, final float[] mean, final float[] rstd, final int statOff,
        final float[] dx, final int dxOff, final int channels, final int n0, final int n1, final boolean accumulate) {
        final int vec = channels / L * L;
        for (int n = n0; n < n1; n++) {
            final float m = mean[statOff + n];
            final float r = rstd[statOff + n];
            final int xr = xOff + n * channels;
            final int dr = dyOff + n * channels;
            FloatVector accD = FloatVector.zero(S);
            FloatVector accDX = FloatVector.zero(S);
            for (int c = 0; c < vec; c += L) {
                final FloatVector xhat = FloatVector.fromArray(S, x, xr + c).sub(m).mul(r);
                final FloatVector dxhat = FloatVector.fromArray(S, dy, dr + c).mul(FloatVector.fromArray(S, p,
                    gammaOff + c));
                accD = accD.add(dxhat);
                accDX = dxhat.fma(xhat, accDX);
            }
            float sumD = accD.reduceLanes(VectorOperators.ADD);
            float sumDX = accDX.reduceLanes(VectorOperators.ADD);
            for (int c = vec; c < channels; c++) {
                final float xhat = (x[xr + c] - m) * r;
                final float dxhat = dy[dr + c] * p[gammaOff + c];
                sumD += dxhat;
                sumDX = Math.fma(dxhat, xhat, sumDX);
            }
            final float meanD = sumD / channels;
            final float meanDX = sumDX / channels;
            final int out = dxOff + n * channels;
            for (int c = 0; c < vec; c += L) {
                final FloatVector xhat = FloatVector.fromArray(S, x, xr + c).sub(m).mul(r);
                final FloatVector dxhat = FloatVector.fromArray(S, dy, dr + c).mul(FloatVector.fromArray(S, p,
                    gammaOff + c));
                FloatVector v = dxhat.sub(meanD).sub(xhat.mul(meanDX)).mul(r);
                if (accumulate) {
                    v = v.add(FloatVector.fromArray(S, dx, out + c));
                }
                v.intoArray(dx, out + c);
            }
            for (int c = vec; c < channels; c++) {
                final float xhat = (x[xr + c] - m) * r;
                final float dxhat = dy[dr + c] * p[gammaOff + c];
                final float v = (dxhat - meanD - xhat * meanDX) * r;
                dx[out + c] = accumulate ? v + dx[out + c] : v;
            }
        }
    }

    @Override
    public void layerNormBackwardParams(final float[] dy, final int dyOff, final float[] x, final int xOff,
        final float[] mean, final float[] rstd, final int statOff, final float[] g, final int dgammaOff,
        final int dbetaOff, final int rows, final int channels, final int c0, final int c1) {
        int c = c0;
        for (; c + L <= c1; c += L) {
            FloatVector dgamma = FloatVector.zero(S);
            FloatVector dbeta = FloatVector.zero(S);
            for (int n = 0; n < rows; n++) {
                final FloatVector d = FloatVector.fromArray(S, dy, dyOff + n * channels + c);
                final FloatVector xhat = FloatVector.fromArray(S, x, xOff + n * channels + c).sub(mean[statOff + n])
                    .mul(rstd[statOff + n]);
                dgamma = d.fma(xhat, dgamma);
                dbeta = dbeta.add(d);
            }
            dgamma.intoArray(g, dgammaOff + c);
            dbeta.intoArray(g, dbetaOff + c);
        }
        for (; c < c1; c++) {
            float dgamma = 0f;
            float dbeta = 0f;
            for (int n = 0; n < rows; n++) {
                final float d = dy[dyOff + n * channels + c];
                final float xhat = (x[xOff + n * channels + c] - mean[statOff + n]) * rstd[statOff + n];
                dgamma = Math.fma(d, xhat, dgamma);
                dbeta += d;
            }
            g[dgammaOff + c] = dgamma;
            g[dbetaOff + c] = dbeta;
        }
    }

    // ---------------------------------------------------------------- linear

    // y[n, o0:o1] = x[n, :] Wt[:, o0:o1] + b, Wt = W^T packed into scratch as [in, width] (width = o1-o0 rounded up
    // to whole vectors, zero padded); then the padded bias at scratch[in*width]. Tile: 4 rows x 4 vectors.
    @Override
    public void linearForward(final float[] x, final int xOff, final float[] w, final int wOff, final int bOff,
        final float[] y, final int yOff, final int rows, final int in, final int out, final int o0, final int o1,
        final float[] scratch) {
        final int cols = o1 - o0;
        if (cols <= 0 || rows <= 0) {
            return;
        }
        final int width = roundUp(cols, L);
        packTransposed(w, wOff, in, o0, o1, width, scratch);
        final int biasAt = in * width;
        for (int j = 0; j < width; j++) {
            scratch[biasAt + j] = bOff >= 0 && j < cols ? w[bOff + o0 + j] : 0f;
        }
        final int tmp = biasAt + width;
        final int fullVecs = cols / L;     // vectors whose lanes are all real columns
        final int rows4 = rows / 4 * 4;
        // column chunks outer, rows inner: the chunk of the panel ([in, 4 vectors]) stays in L1 across all rows
        int v = 0;
        for (; v + 4 <= fullVecs; v += 4) {
            for (int n = 0; n < rows4; n += 4) {
                tile4x4(x, xOff + n * in, in, 1, scratch, v * L, width, in, y, yOff + n * out + o0 + v * L, out,
                    scratch, biasAt + v * L, 0);
            }
        }
        for (int n = 0; n < rows; n++) {
            final int firstVec = n < rows4 ? v : 0;
            for (int u = firstVec; u * L < width; u++) {
                forwardVector(x, xOff + n * in, in, scratch, width, u * L, y, yOff + n * out + o0, cols, biasAt, tmp);
            }
        }
    }

    /** Per thread: lane j holds j * in, the gather map of one column of W (refilled per call; no allocation). */
    private static final ThreadLocal<int[]> COLUMN_MAP = ThreadLocal.withInitial(() -> new int[L]);

    // wt[i * width + (o - o0)] = W[o, i]: one gather per vector of L output rows and input i (2.2x faster than
    // scalar copies on AVX-512), scalar for the last cols % L rows; zero padding up to width
    private static void packTransposed(final float[] w, final int wOff, final int in, final int o0, final int o1,
        final int width, final float[] wt) {
        final int cols = o1 - o0;
        final int[] map = COLUMN_MAP.get();
        for (int j = 0; j < L; j++) {
            map[j] = j * in;
        }
        final int vecCols = cols / L * L;
        for (int ob = 0; ob < vecCols; ob += L) {
            final int src = wOff + (o0 + ob) * in;
            for (int i = 0; i < in; i++) {
                FloatVector.fromArray(S, w, src + i, map, 0).intoArray(wt, i * width + ob);
            }
        }
        for (int o = vecCols; o < cols; o++) {
            for (int i = 0; i < in; i++) {
                wt[i * width + o] = w[wOff + (o0 + o) * in + i];
            }
        }
        if (width > cols) {
            for (int i = 0; i < in; i++) {
                java.util.Arrays.fill(wt, i * width + cols, (i + 1) * width, 0f);
            }
        }
    }

    /** Added to the dx tile: the register tile always adds a vector, and for dx there is nothing to add. */
    private static final float[] ZEROS = new float[4 * L];

    // The register tile of all three GEMMs, 4 rows x 4 vectors:
    //   acc[r][c] = sum_k b[b0 + k*bStride + c*L : +L] * a[a0 + r*aRow + k*aDepth]      (one fma chain, k ascending)
    //   out[o0 + r*oRow + c*L : +L] = acc[r][c] + add[add0 + r*addRow + c*L : +L]
    // y = x W^T: a = x, b = packed W^T, add = padded bias (addRow 0); dx = dy W: a = dy, b = W, add = zeros;
    // dW = dy^T x: a = dy read down a column (aRow 1, aDepth out), b = x, add = dW itself (accumulating passes).
    private static void tile4x4(final float[] a, final int a0, final int aRow, final int aDepth, final float[] b,
        final int b0, final int bStride, final int depth, final float[] out, final int o0, final int oRow,
        final float[] add, final int add0, final int addRow) {
        FloatVector a00 = FloatVector.zero(S), a01 = a00, a02 = a00, a03 = a00;
        FloatVector a10 = a00, a11 = a00, a12 = a00, a13 = a00;
        FloatVector a20 = a00, a21 = a00, a22 = a00, a23 = a00;
        FloatVector a30 = a00, a31 = a00, a32 = a00, a33 = a00;
        for (int k = 0; k < depth; k++) {
            final int bk = b0 + k * bStride;
            final FloatVector v0 = FloatVector.fromArray(S, b, bk);
            final FloatVector v1 = FloatVector.fromArray(S, b, bk + L);
            final FloatVector v2 = FloatVector.fromArray(S, b, bk + 2 * L);
            final FloatVector v3 = FloatVector.fromArray(S, b, bk + 3 * L);
            final int ak = a0 + k * aDepth;
            final FloatVector x0 = FloatVector.broadcast(S, a[ak]);
            a00 = v0.fma(x0, a00);
            a01 = v1.fma(x0, a01);
            a02 = v2.fma(x0, a02);
            a03 = v3.fma(x0, a03);
            final FloatVector x1 = FloatVector.broadcast(S, a[ak + aRow]);
            a10 = v0.fma(x1, a10);
            a11 = v1.fma(x1, a11);
            a12 = v2.fma(x1, a12);
            a13 = v3.fma(x1, a13);
            final FloatVector x2 = FloatVector.broadcast(S, a[ak + 2 * aRow]);
            a20 = v0.fma(x2, a20);
            a21 = v1.fma(x2, a21);
            a22 = v2.fma(x2, a22);
            a23 = v3.fma(x2, a23);
            final FloatVector x3 = FloatVector.broadcast(S, a[ak + 3 * aRow]);
            a30 = v0.fma(x3, a30);
            a31 = v1.fma(x3, a31);
            a32 = v2.fma(x3, a32);
            a33 = v3.fma(x3, a33);
        }
        a00.add(FloatVector.fromArray(S, add, add0)).intoArray(out, o0);
        a01.add(FloatVector.fromArray(S, add, add0 + L)).intoArray(out, o0 + L);
        a02.add(FloatVector.fromArray(S, add, add0 + 2 * L)).intoArray(out, o0 + 2 * L);
        a03.add(FloatVector.fromArray(S, add, add0 + 3 * L)).intoArray(out, o0 + 3 * L);
        a10.add(FloatVector.fromArray(S, add, add0 + addRow)).intoArray(out, o0 + oRow);
        a11.add(FloatVector.fromArray(S, add, add0 + addRow + L)).intoArray(out, o0 + oRow + L);
        a12.add(FloatVector.fromArray(S, add, add0 + addRow + 2 * L)).intoArray(out, o0 + oRow + 2 * L);
        a13.add(FloatVector.fromArray(S, add, add0 + addRow + 3 * L)).intoArray(out, o0 + oRow + 3 * L);
        a20.add(FloatVector.fromArray(S, add, add0 + 2 * addRow)).intoArray(out, o0 + 2 * oRow);
        a21.add(FloatVector.fromArray(S, add, add0 + 2 * addRow + L)).intoArray(out, o0 + 2 * oRow + L);
        a22.add(FloatVector.fromArray(S, add, add0 + 2 * addRow + 2 * L)).intoArray(out, o0 + 2 * oRow + 2 * L);
        a23.add(FloatVector.fromArray(S, add, add0 + 2 * addRow + 3 * L)).intoArray(out, o0 + 2 * oRow + 3 * L);
        a30.add(FloatVector.fromArray(S, add, add0 + 3 * addRow)).intoArray(out, o0 + 3 * oRow);
        a31.add(FloatVector.fromArray(S, add, add0 + 3 * addRow + L)).intoArray(out, o0 + 3 * oRow + L);
        a32.add(FloatVector.fromArray(S, add, add0 + 3 * addRow + 2 * L)).intoArray(out, o0 + 3 * oRow + 2 * L);
        a33.add(FloatVector.fromArray(S, add, add0 + 3 * addRow + 3 * L)).intoArray(out, o0 + 3 * oRow + 3 * L);
    }

    // one row, one vector of columns [col, col + L); lanes past cols are computed on zero padding and not stored
    private static void forwardVector(final float[] x, final int x0, final int in, final float[] wt, final int width,
        final int col, final float[] y, final int yRow, final int cols, final int biasAt, final int tmp) {
        FloatVector acc = FloatVector.zero(S);
        for (int i = 0; i < in; i++) {
            acc = FloatVector.fromArray(S, wt, i * width + col).fma(FloatVector.broadcast(S, x[x0 + i]), acc);
        }
        acc = acc.add(FloatVector.fromArray(S, wt, biasAt + col));
        if (col + L <= cols) {
            acc.intoArray(y, yRow + col);
        } else {
            acc.intoArray(wt, tmp);
            for (int j = col; j < cols; j++) {
                y[yRow + j] = wt[tmp + j - col];
            }
        }
    }

    // dx[n, i] = sum_o dy[n, o] W[o, i]: broadcast dy, stream rows of W. Tile: 4 rows x 4 vectors of i.
    @Override
    public void linearBackwardInput(final float[] dy, final int dyOff, final float[] w, final int wOff,
        final float[] dx, final int dxOff, final int in, final int out, final int n0, final int n1,
        final boolean accumulate) {
        final int vecs = in / L;
        int n = n0;
        for (; n + 4 <= n1; n += 4) {
            int v = 0;
            // the register tile overwrites; accumulating calls (the small router product) take the vector path
            for (; !accumulate && v + 4 <= vecs; v += 4) {
                tile4x4(dy, dyOff + n * out, out, 1, w, wOff + v * L, in, out, dx, dxOff + n * in + v * L, in, ZEROS, 0,
                    0);
            }
            for (; v < vecs; v++) {
                for (int r = 0; r < 4; r++) {
                    backwardInputVector(dy, dyOff + (n + r) * out, out, w, wOff + v * L, in, dx,
                        dxOff + (n + r) * in + v * L, accumulate);
                }
            }
            for (int r = 0; r < 4; r++) {
                backwardInputScalarTail(dy, dyOff + (n + r) * out, out, w, wOff, in, vecs * L, dx, dxOff + (n + r) * in,
                    accumulate);
            }
        }
        for (; n < n1; n++) {
            for (int v = 0; v < vecs; v++) {
                backwardInputVector(dy, dyOff + n * out, out, w, wOff + v * L, in, dx, dxOff + n * in + v * L,
                    accumulate);
            }
            backwardInputScalarTail(dy, dyOff + n * out, out, w, wOff, in, vecs * L, dx, dxOff + n * in, accumulate);
        }
    }

    private static void store(final FloatVector acc, final float[] dst, final int at, final boolean accumulate) {
        (accumulate ? FloatVector.fromArray(S, dst, at).add(acc) : acc).intoArray(dst, at);
    }

    private static void backwardInputVector(final float[] dy, final int d0, final int out, final float[] w,
        final int w0, final int in, final float[] dx, final int x0, final boolean accumulate) {
        FloatVector acc = FloatVector.zero(S);
        for (int o = 0; o < out; o++) {
            acc = FloatVector.fromArray(S, w, w0 + o * in).fma(FloatVector.broadcast(S, dy[d0 + o]), acc);
        }
        store(acc, dx, x0, accumulate);
    }

    private static void backwardInputScalarTail(final float[] dy, final int d0, final int out, final float[] w,
        final int wOff, final int in, final int from, final float[] dx, final int x0, final boolean accumulate) {
        for (int i = from; i < in; i++) {
            float acc = 0f;
            for (int o = 0; o < out; o++) {
                acc = Math.fma(w[wOff + o * in + i], dy[d0 + o], acc);
            }
            dx[x0 + i] = accumulate ? dx[x0 + i] + acc : acc;
        }
    }

    /** Rows per pass of the weight gradient: keeps a pass's x and dy rows in L2 (dW accumulates over passes). */
    private static final int WEIGHT_ROW_CHUNK = 256;

    // dW[o, i] = sum over row chunks of (sum_n dy[n, o] x[n, i]): broadcast dy, stream rows of x.
    // Tile: 4 outputs x 4 vectors of i. dW is zeroed first and every chunk adds its partial sum, in chunk order.
    @Override
    public void linearBackwardWeight(final float[] dy, final int dyOff, final float[] x, final int xOff,
        final float[] g, final int dwOff, final int dbOff, final int rows, final int in, final int out, final int o0,
        final int o1) {
        if (o0 >= o1) {
            return;
        }
        java.util.Arrays.fill(g, dwOff + o0 * in, dwOff + o1 * in, 0f);
        for (int r0 = 0; r0 < rows; r0 += WEIGHT_ROW_CHUNK) {
            weightChunk(dy, dyOff + r0 * out, x, xOff + r0 * in, g, dwOff, Math.min(WEIGHT_ROW_CHUNK, rows - r0), in,
                out, o0, o1);
        }
        if (dbOff >= 0) {
            biasGradient(dy, dyOff, out, rows, g, dbOff, o0, o1);
        }
    }

    private static void weightChunk(final float[] dy, final int dyOff, final float[] x, final int xOff,
        final float[] g, final int dwOff, final int rows, final int in, final int out, final int o0, final int o1) {
        final int vecs = in / L;
        int o = o0;
        for (; o + 4 <= o1; o += 4) {
            int v = 0;
            for (; v + 4 <= vecs; v += 4) {
                final int at = dwOff + o * in + v * L;
                tile4x4(dy, dyOff + o, 1, out, x, xOff + v * L, in, rows, g, at, in, g, at, in);
            }
            for (; v < vecs; v++) {
                for (int r = 0; r < 4; r++) {
                    weightVector(dy, dyOff + o + r, out, x, xOff + v * L, in, rows, g, dwOff + (o + r) * in + v * L);
                }
            }
        }
        for (; o < o1; o++) {
            for (int v = 0; v < vecs; v++) {
                weightVector(dy, dyOff + o, out, x, xOff + v * L, in, rows, g, dwOff + o * in + v * L);
            }
        }
        for (o = o0; o < o1; o++) {
            for (int i = vecs * L; i < in; i++) {
                float acc = 0f;
                for (int n = 0; n < rows; n++) {
                    acc = Math.fma(x[xOff + n * in + i], dy[dyOff + n * out + o], acc);
                }
                g[dwOff + o * in + i] += acc;
            }
        }
    }

    private static void weightVector(final float[] dy, final int d0, final int out, final float[] x, final int x0,
        final int in, final int rows, final float[] g, final int g0) {
        FloatVector acc = FloatVector.zero(S);
        for (int n = 0; n < rows; n++) {
            acc = FloatVector.fromArray(S, x, x0 + n * in).fma(FloatVector.broadcast(S, dy[d0 + n * out]), acc);
        }
        acc.add(FloatVector.fromArray(S, g, g0)).intoArray(g, g0);
    }

    // db[o] = sum_n dy[n, o] for o in [o0, o1): row by row (contiguous), each element summed in row order
    private static void biasGradient(final float[] dy, final int dyOff, final int out, final int rows, final float[] g,
        final int dbOff, final int o0, final int o1) {
        java.util.Arrays.fill(g, dbOff + o0, dbOff + o1, 0f);
        final int vecEnd = o0 + (o1 - o0) / L * L;
        for (int n = 0; n < rows; n++) {
            final int row = dyOff + n * out;
            int o = o0;
            for (; o < vecEnd; o += L) {
                FloatVector.fromArray(S, g, dbOff + o).add(FloatVector.fromArray(S, dy, row + o))
                    .intoArray(g, dbOff + o);
            }
            for (; o < o1; o++) {
                g[dbOff + o] += dy[row + o];
            }
        }
    }

    // ---------------------------------------------------------------- GELU

    // The vector loops live in their own small methods: C2 inlines a bounded amount of bytecode per compilation, and
    // a Vector API op that is not inlined boxes its vectors (allocation, and a hundredfold slowdown).
    @Override
    public void geluForward(final float[] h, final int hOff, final float[] a, final int aOff, final int count) {
        final int vec = count / L * L;
        geluForwardVectors(h, hOff, a, aOff, vec);
        for (int j = vec; j < count; j++) {
            final float x = h[hOff + j];
            final float e = VectorMath.exp(x * x * -0.5f);
            a[aOff + j] = x * VectorMath.normalCdf(x, e);
        }
    }

    private static void geluForwardVectors(final float[] h, final int hOff, final float[] a, final int aOff,
        final int count) {
        for (int j = 0; j < count; j += L) {
            final FloatVector x = FloatVector.fromArray(S, h, hOff + j);
            final FloatVector e = VectorMath.exp(x.mul(x).mul(-0.5f));
            x.mul(VectorMath.normalCdf(x, e)).intoArray(a, aOff + j);
        }
    }

    @Override
    public void geluBackward(final float[] h, final int hOff, final float[] da, final int daOff, final float[] dh,
        final int dhOff, final int count) {
        final int vec = count / L * L;
        geluBackwardVectors(h, hOff, da, daOff, dh, dhOff, vec);
        for (int j = vec; j < count; j++) {
            final float x = h[hOff + j];
            final float e = VectorMath.exp(x * x * -0.5f);
            final float grad = Math.fma(x * e, VectorMath.INV_SQRT_2PI, VectorMath.normalCdf(x, e));
            dh[dhOff + j] = da[daOff + j] * grad;
        }
    }

    private static void geluBackwardVectors(final float[] h, final int hOff, final float[] da, final int daOff,
        final float[] dh, final int dhOff, final int count) {
        final FloatVector invSqrt2Pi = FloatVector.broadcast(S, VectorMath.INV_SQRT_2PI);
        for (int j = 0; j < count; j += L) {
            final FloatVector x = FloatVector.fromArray(S, h, hOff + j);
            final FloatVector e = VectorMath.exp(x.mul(x).mul(-0.5f));
            final FloatVector grad = x.mul(e).fma(invSqrt2Pi, VectorMath.normalCdf(x, e));
            FloatVector.fromArray(S, da, daOff + j).mul(grad).intoArray(dh, dhOff + j);
        }
    }

    // ---------------------------------------------------------------- attention

    private static boolean attentionVectorisable(final int seqLen, final int channels, final int heads) {
        return seqLen % L == 0 && channels / heads % L == 0;
    }

    // per (b, h): kt = K^T * scale [D, T]; scores for 4 query rows at a time over the causal prefix; softmax with
    // the masked entries exactly 0; out = P V over 4 rows at a time.
    @Override
    public void attentionForward(final float[] qkv, final int qkvOff, final float[] out, final int outOff,
        final float[] probs, final int probsOff, final int seqLen, final int channels, final int heads, final int p0,
        final int p1, final float[] scratch) {
        if (!attentionVectorisable(seqLen, channels, heads)) {
            REFERENCE.attentionForward(qkv, qkvOff, out, outOff, probs, probsOff, seqLen, channels, heads, p0, p1,
                scratch);
            return;
        }
        final int d = channels / heads;
        final int T = seqLen;
        final int stride = 3 * channels;
        final float scale = (float) (1.0 / Math.sqrt(d));
        final int kt = 0;
        for (int p = p0; p < p1; p++) {
            final int b = p / heads;
            final int h = p % heads;
            final int rowBase = qkvOff + b * T * stride;
            final int q = rowBase + h * d;
            final int k = rowBase + channels + h * d;
            final int v = rowBase + 2 * channels + h * d;
            final int pr = probsOff + p * T * T;
            for (int s = 0; s < T; s++) {
                for (int i = 0; i < d; i++) {
                    scratch[kt + i * T + s] = qkv[k + s * stride + i] * scale;
                }
            }
            for (int t0 = 0; t0 < T; t0 += 4) {
                final int rowsHere = Math.min(4, T - t0);
                final int end = roundUp(Math.min(t0 + 4, T), L);
                // scores -> probs rows (raw scores first, softmax in place)
                scores(qkv, q + t0 * stride, stride, rowsHere, scratch, kt, T, d, probs, pr + t0 * T, T, end);
                for (int r = 0; r < rowsHere; r++) {
                    softmaxCausalRow(probs, pr + (t0 + r) * T, t0 + r, end, T);
                }
                // out rows t0..t0+3 = P V over s < end (P is 0 above the diagonal)
                final int o = outOff + (b * T + t0) * channels + h * d;
                product(rowsHere, probs, pr + t0 * T, T, 1, qkv, v, stride, 0, end, d, out, o, channels, 1f);
            }
        }
    }

    // row [0, end) holds raw scores; softmax over [0, t], zeros in (t, T)
    private static void softmaxCausalRow(final float[] p, final int row, final int t, final int end, final int T) {
        for (int s = t + 1; s < end; s++) {
            p[row + s] = Float.NEGATIVE_INFINITY;
        }
        FloatVector mv = FloatVector.broadcast(S, Float.NEGATIVE_INFINITY);
        for (int s = 0; s < end; s += L) {
            mv = mv.max(FloatVector.fromArray(S, p, row + s));
        }
        final float max = mv.reduceLanes(VectorOperators.MAX);
        FloatVector sum = FloatVector.zero(S);
        for (int s = 0; s < end; s += L) {
            final FloatVector e = VectorMath.exp(FloatVector.fromArray(S, p, row + s).sub(max));
            e.intoArray(p, row + s);
            sum = sum.add(e);
        }
        final float inv = 1f / sum.reduceLanes(VectorOperators.ADD);
        for (int s = 0; s < end; s += L) {
            FloatVector.fromArray(S, p, row + s).mul(inv).intoArray(p, row + s);
        }
        java.util.Arrays.fill(p, row + end, row + T, 0f);
    }

    // per (b, h): dP = dO V^T (vt = V^T), dS = P (dP - rowsum(P dP)), dQ = scale dS K, dK = scale dS^T Q, dV = P^T dO
    @Override
    public void attentionBackward(final float[] dout, final int doutOff, final float[] qkv, final int qkvOff,
        final float[] probs, final int probsOff, final float[] dqkv, final int dqkvOff, final int seqLen,
        final int channels, final int heads, final int p0, final int p1, final float[] scratch) {
        if (!attentionVectorisable(seqLen, channels, heads)) {
            REFERENCE.attentionBackward(dout, doutOff, qkv, qkvOff, probs, probsOff, dqkv, dqkvOff, seqLen, channels,
                heads, p0, p1, scratch);
            return;
        }
        final int d = channels / heads;
        final int T = seqLen;
        final int stride = 3 * channels;
        final float scale = (float) (1.0 / Math.sqrt(d));
        final int ds = 0;          // [T, T]
        final int vt = T * T;      // [D, T]
        for (int p = p0; p < p1; p++) {
            final int b = p / heads;
            final int h = p % heads;
            final int rowBase = qkvOff + b * T * stride;
            final int dRowBase = dqkvOff + b * T * stride;
            final int q = rowBase + h * d;
            final int k = rowBase + channels + h * d;
            final int v = rowBase + 2 * channels + h * d;
            final int pr = probsOff + p * T * T;
            final int dO = doutOff + b * T * channels + h * d;
            for (int s = 0; s < T; s++) {
                for (int i = 0; i < d; i++) {
                    scratch[vt + i * T + s] = qkv[v + s * stride + i];
                }
            }
            for (int t0 = 0; t0 < T; t0 += 4) {
                final int rowsHere = Math.min(4, T - t0);
                final int end = roundUp(Math.min(t0 + 4, T), L);
                scores(dout, dO + t0 * channels, channels, rowsHere, scratch, vt, T, d, scratch, ds + t0 * T, T, end);
                for (int r = 0; r < rowsHere; r++) {
                    final int row = (t0 + r) * T;
                    FloatVector dot = FloatVector.zero(S);
                    for (int s = 0; s < end; s += L) {
                        dot = FloatVector.fromArray(S, probs, pr + row + s).fma(FloatVector.fromArray(S, scratch,
                            ds + row + s), dot);
                    }
                    final float rowDot = dot.reduceLanes(VectorOperators.ADD);
                    for (int s = 0; s < end; s += L) {
                        final FloatVector pv = FloatVector.fromArray(S, probs, pr + row + s);
                        pv.mul(FloatVector.fromArray(S, scratch, ds + row + s).sub(rowDot)).intoArray(scratch,
                            ds + row + s);
                    }
                    java.util.Arrays.fill(scratch, ds + row + end, ds + row + T, 0f);
                }
                // dQ rows = scale * dS K
                product(rowsHere, scratch, ds + t0 * T, T, 1, qkv, k, stride, 0, end, d, dqkv,
                    dRowBase + t0 * stride + h * d, stride, scale);
            }
            // dK rows s0..s0+3 = scale * sum_{t >= s} dS[t, s] q_t;  dV rows = sum_{t >= s} P[t, s] dO_t
            for (int s0 = 0; s0 < T; s0 += 4) {
                final int rowsHere = Math.min(4, T - s0);
                // column block s0..s0+3 of dS (resp. P) is zero above the diagonal, so t from s0 is exact
                product(rowsHere, scratch, ds + s0, 1, T, qkv, q, stride, s0, T, d, dqkv,
                    dRowBase + s0 * stride + channels + h * d, stride, scale);
                product(rowsHere, probs, pr + s0, 1, T, dout, dO, channels, s0, T, d, dqkv,
                    dRowBase + s0 * stride + 2 * channels + h * d, stride, 1f);
            }
        }
    }

    // The attention products are all one shape, a block of up to 4 rows x 1 or 2 vectors:
    //   dst[dst0 + r*dstRow + c*L : +L] =
    //       scale * sum_{k in [k0, k1)} b[b0 + k*bStride + c*L : +L] * a[a0 + r*aRow + k*aDepth]
    // scores  S = Q K^T:   a = q rows (aRow = row stride, aDepth 1),  b = packed K^T, k over D;
    // outputs O = P V:     a = P rows, b = V rows, k over the causal prefix;
    // columns dK = dS^T Q: a = a column block of dS (aRow 1, aDepth T), b = Q rows, k over t >= s0.

    // scores for the rows of one block over s in [0, end): vector pairs while the block is full
    private static void scores(final float[] a, final int a0, final int aRow, final int rows, final float[] bt,
        final int b0, final int btStride, final int depth, final float[] dst, final int dst0, final int dstRow,
        final int end) {
        int s = 0;
        for (; rows == 4 && s + 2 * L <= end; s += 2 * L) {
            tile4x2(a, a0, aRow, 1, bt, b0 + s, btStride, 0, depth, dst, dst0 + s, dstRow, 1f);
        }
        for (; s < end; s += L) {
            tileRows(rows, a, a0, aRow, 1, bt, b0 + s, btStride, 0, depth, dst, dst0 + s, dstRow, 1f);
        }
    }

    // dst rows = scale * a-block x b over d columns (vector pairs while the block is full)
    private static void product(final int rows, final float[] a, final int a0, final int aRow, final int aDepth,
        final float[] b, final int b0, final int bStride, final int k0, final int k1, final int d, final float[] dst,
        final int dst0, final int dstRow, final float scale) {
        int c = 0;
        for (; rows == 4 && c + 2 * L <= d; c += 2 * L) {
            tile4x2(a, a0, aRow, aDepth, b, b0 + c, bStride, k0, k1, dst, dst0 + c, dstRow, scale);
        }
        for (; c < d; c += L) {
            tileRows(rows, a, a0, aRow, aDepth, b, b0 + c, bStride, k0, k1, dst, dst0 + c, dstRow, scale);
        }
    }

    private static void tile4x2(final float[] a, final int a0, final int aRow, final int aDepth, final float[] b,
        final int b0, final int bStride, final int k0, final int k1, final float[] dst, final int dst0,
        final int dstRow, final float scale) {
        FloatVector a00 = FloatVector.zero(S), a01 = a00, a10 = a00, a11 = a00;
        FloatVector a20 = a00, a21 = a00, a30 = a00, a31 = a00;
        for (int k = k0; k < k1; k++) {
            final FloatVector v0 = FloatVector.fromArray(S, b, b0 + k * bStride);
            final FloatVector v1 = FloatVector.fromArray(S, b, b0 + k * bStride + L);
            final int ak = a0 + k * aDepth;
            final FloatVector p0 = FloatVector.broadcast(S, a[ak]);
            a00 = v0.fma(p0, a00);
            a01 = v1.fma(p0, a01);
            final FloatVector p1 = FloatVector.broadcast(S, a[ak + aRow]);
            a10 = v0.fma(p1, a10);
            a11 = v1.fma(p1, a11);
            final FloatVector p2 = FloatVector.broadcast(S, a[ak + 2 * aRow]);
            a20 = v0.fma(p2, a20);
            a21 = v1.fma(p2, a21);
            final FloatVector p3 = FloatVector.broadcast(S, a[ak + 3 * aRow]);
            a30 = v0.fma(p3, a30);
            a31 = v1.fma(p3, a31);
        }
        a00.mul(scale).intoArray(dst, dst0);
        a01.mul(scale).intoArray(dst, dst0 + L);
        a10.mul(scale).intoArray(dst, dst0 + dstRow);
        a11.mul(scale).intoArray(dst, dst0 + dstRow + L);
        a20.mul(scale).intoArray(dst, dst0 + 2 * dstRow);
        a21.mul(scale).intoArray(dst, dst0 + 2 * dstRow + L);
        a30.mul(scale).intoArray(dst, dst0 + 3 * dstRow);
        a31.mul(scale).intoArray(dst, dst0 + 3 * dstRow + L);
    }

    // the same product for 1..4 rows and one vector (block edges)
    private static void tileRows(final int rows, final float[] a, final int a0, final int aRow, final int aDepth,
        final float[] b, final int b0, final int bStride, final int k0, final int k1, final float[] dst,
        final int dst0, final int dstRow, final float scale) {
        FloatVector s0 = FloatVector.zero(S), s1 = s0, s2 = s0, s3 = s0;
        for (int k = k0; k < k1; k++) {
            final FloatVector v = FloatVector.fromArray(S, b, b0 + k * bStride);
            final int ak = a0 + k * aDepth;
            s0 = v.fma(FloatVector.broadcast(S, a[ak]), s0);
            if (rows > 1) {
                s1 = v.fma(FloatVector.broadcast(S, a[ak + aRow]), s1);
            }
            if (rows > 2) {
                s2 = v.fma(FloatVector.broadcast(S, a[ak + 2 * aRow]), s2);
            }
            if (rows > 3) {
                s3 = v.fma(FloatVector.broadcast(S, a[ak + 3 * aRow]), s3);
            }
        }
        s0.mul(scale).intoArray(dst, dst0);
        if (rows > 1) {
            s1.mul(scale).intoArray(dst, dst0 + dstRow);
        }
        if (rows > 2) {
            s2.mul(scale).intoArray(dst, dst0 + 2 * dstRow);
        }
        if (rows > 3) {
            s3.mul(scale).intoArray(dst, dst0 + 3 * dstRow);
        }
    }

    // ---------------------------------------------------------------- cross-entropy

    @Override
    public void crossEntropyForward(final float[] logits, final int vocab, final int[] targets, final float[] losses,
        final int n0, final int n1) {
        final int vec = vocab / L * L;
        for (int n = n0; n < n1; n++) {
            final int row = n * vocab;
            FloatVector mv = FloatVector.broadcast(S, Float.NEGATIVE_INFINITY);
            for (int v = 0; v < vec; v += L) {
                mv = mv.max(FloatVector.fromArray(S, logits, row + v));
            }
            float max = mv.reduceLanes(VectorOperators.MAX);
            for (int v = vec; v < vocab; v++) {
                max = Math.max(max, logits[row + v]);
            }
            final float target = logits[row + targets[n]];
            FloatVector sv = FloatVector.zero(S);
            for (int v = 0; v < vec; v += L) {
                final FloatVector e = VectorMath.exp(FloatVector.fromArray(S, logits, row + v).sub(max));
                e.intoArray(logits, row + v);
                sv = sv.add(e);
            }
            float sum = sv.reduceLanes(VectorOperators.ADD);
            for (int v = vec; v < vocab; v++) {
                logits[row + v] = VectorMath.exp(logits[row + v] - max);
                sum += logits[row + v];
            }
            losses[n] = (float) (Math.log(sum) + max - target);
            final float inv = 1f / sum;
            for (int v = 0; v < vec; v += L) {
                FloatVector.fromArray(S, logits, row + v).mul(inv).intoArray(logits, row + v);
            }
            for (int v = vec; v < vocab; v++) {
                logits[row + v] *= inv;
            }
        }
    }

    @Override
    public void crossEntropyBackward(final float[] probs, final int vocab, final int[] targets, final float scale,
        final int n0, final int n1) {
        final int vec = vocab / L * L;
        for (int n = n0; n < n1; n++) {
            final int row = n * vocab;
            for (int v = 0; v < vec; v += L) {
                FloatVector.fromArray(S, probs, row + v).mul(scale).intoArray(probs, row + v);
            }
            for (int v = vec; v < vocab; v++) {
                probs[row + v] *= scale;
            }
            probs[row + targets[n]] -= scale;
        }
    }

    // ---------------------------------------------------------------- router

    // logits = x Wr^T with Wr^T packed as [C, Ep] (Ep = E rounded up to vectors), softmax/sigmoid in vectors,
    // top-k and gates scalar
    @Override
    public void routerForward(final float[] x, final int xOff, final float[] p, final int wrOff, final float[] bias,
        final int biasOff, final boolean sigmoid, final int channels, final int experts, final int topK,
        final float[] logits, final int logitsOff, final float[] scores, final int scoresOff, final float[] lse,
        final int lseOff, final int[] selected, final int selectedOff, final float[] gates, final int gatesOff,
        final int n0, final int n1, final float[] scratch) {
        if (n0 >= n1) {
            return;
        }
        final int ep = roundUp(experts, L);
        packTransposed(p, wrOff, channels, 0, experts, ep, scratch);
        final int row = channels * ep;     // one token's padded logits / scores
        for (int n = n0; n < n1; n++) {
            for (int e = 0; e < ep; e += L) {
                rowTimesPanel(x, xOff + n * channels, channels, scratch, e, ep, scratch, row + e);
            }
            float max = Float.NEGATIVE_INFINITY;
            for (int e = 0; e < experts; e++) {
                logits[logitsOff + n * experts + e] = scratch[row + e];
                max = Math.max(max, scratch[row + e]);
            }
            for (int e = experts; e < ep; e++) {
                scratch[row + e] = Float.NEGATIVE_INFINITY;
            }
            FloatVector sumv = FloatVector.zero(S);
            for (int e = 0; e < ep; e += L) {
                final FloatVector lv = FloatVector.fromArray(S, scratch, row + e);
                final FloatVector ev = VectorMath.exp(lv.sub(max));
                sumv = sumv.add(ev);
                if (sigmoid) {
                    // 1 / (1 + e^-x)
                    final FloatVector sg = FloatVector.broadcast(S, 1f).div(VectorMath.exp(lv.neg()).add(1f));
                    sg.intoArray(scratch, row + ep + e);
                } else {
                    ev.intoArray(scratch, row + ep + e);
                }
            }
            final float sum = sumv.reduceLanes(VectorOperators.ADD);
            lse[lseOff + n] = max + (float) Math.log(sum);
            final float inv = 1f / sum;
            final int srow = scoresOff + n * experts;
            for (int e = 0; e < experts; e++) {
                scores[srow + e] = sigmoid ? scratch[row + ep + e] : scratch[row + ep + e] * inv;
            }
            Routing.selectTopK(scores, srow, bias, biasOff, experts, topK, selected, selectedOff + n * topK);
            float selectedSum = GATE_EPS;
            for (int k = 0; k < topK; k++) {
                selectedSum += scores[srow + selected[selectedOff + n * topK + k]];
            }
            for (int k = 0; k < topK; k++) {
                final float s = scores[srow + selected[selectedOff + n * topK + k]];
                gates[gatesOff + n * topK + k] = topK > 1 ? s / selectedSum : s;
            }
        }
    }

    // dst[0:L] = sum_c x[c] * panel[c * width + col : +L]
    private static void rowTimesPanel(final float[] x, final int x0, final int depth, final float[] panel,
        final int col, final int width, final float[] dst, final int at) {
        FloatVector acc = FloatVector.zero(S);
        for (int c = 0; c < depth; c++) {
            acc = FloatVector.fromArray(S, panel, c * width + col).fma(FloatVector.broadcast(S, x[x0 + c]), acc);
        }
        acc.intoArray(dst, at);
    }

    // same math as the reference, O(E + K) per token: ds accumulated in the dlogits row, then mapped in place
    @Override
    public void routerBackward(final float[] logits, final int logitsOff, final float[] scores, final int scoresOff,
        final float[] lse, final int lseOff, final int[] selected, final int selectedOff, final float[] gates,
        final int gatesOff, final float[] dgates, final int dgatesOff, final float[] dAuxScore, final float zScale,
        final boolean sigmoid, final int experts, final int topK, final float[] dlogits, final int dlogitsOff,
        final int n0, final int n1) {
        for (int n = n0; n < n1; n++) {
            final int srow = scoresOff + n * experts;
            final int drow = dlogitsOff + n * experts;
            final int sel = selectedOff + n * topK;
            // aux loss through the normalised score
            if (dAuxScore == null) {
                java.util.Arrays.fill(dlogits, drow, drow + experts, 0f);
            } else if (sigmoid) {
                float total = 0f;
                for (int e = 0; e < experts; e++) {
                    total += scores[srow + e];
                }
                float dot = 0f;
                for (int e = 0; e < experts; e++) {
                    dot = Math.fma(dAuxScore[e], scores[srow + e] / total, dot);
                }
                for (int e = 0; e < experts; e++) {
                    dlogits[drow + e] = (dAuxScore[e] - dot) / total;
                }
            } else {
                System.arraycopy(dAuxScore, 0, dlogits, drow, experts);
            }
            // gates
            if (topK > 1) {
                float selectedSum = GATE_EPS;
                float gdg = 0f;
                for (int k = 0; k < topK; k++) {
                    selectedSum += scores[srow + selected[sel + k]];
                    gdg = Math.fma(gates[gatesOff + n * topK + k], dgates[dgatesOff + n * topK + k], gdg);
                }
                for (int k = 0; k < topK; k++) {
                    dlogits[drow + selected[sel + k]] += (dgates[dgatesOff + n * topK + k] - gdg) / selectedSum;
                }
            } else {
                dlogits[drow + selected[sel]] += dgates[dgatesOff + n];
            }
            // scores -> logits
            if (sigmoid) {
                for (int e = 0; e < experts; e++) {
                    final float s = scores[srow + e];
                    dlogits[drow + e] = dlogits[drow + e] * s * (1f - s);
                }
            } else {
                float dot = 0f;
                for (int e = 0; e < experts; e++) {
                    dot = Math.fma(dlogits[drow + e], scores[srow + e], dot);
                }
                for (int e = 0; e < experts; e++) {
                    dlogits[drow + e] = scores[srow + e] * (dlogits[drow + e] - dot);
                }
            }
            if (zScale != 0f) {
                final float l = lse[lseOff + n];
                final float coef = 2f * zScale * l;
                for (int e = 0; e < experts; e++) {
                    dlogits[drow + e] = Math.fma(coef, VectorMath.exp(logits[logitsOff + n * experts + e] - l),
                        dlogits[drow + e]);
                }
            }
        }
    }

    // ---------------------------------------------------------------- permute / combine

    @Override
    public void gatherRows(final float[] src, final int srcOff, final int[] rowIndex, final int indexOff,
        final float[] dst, final int dstOff, final int channels, final int r0, final int r1) {
        for (int r = r0; r < r1; r++) {
            System.arraycopy(src, srcOff + rowIndex[indexOff + r] * channels, dst, dstOff + r * channels, channels);
        }
    }

    @Override
    public void combineForward(final float[] y, final int yOff, final int[] slots, final int slotsOff,
        final float[] weights, final int weightsOff, final int slotCount, final float[] residual,
        final int residualOff, final float[] out, final int outOff, final int channels, final int n0, final int n1) {
        final int vec = channels / L * L;
        for (int n = n0; n < n1; n++) {
            final int o = outOff + n * channels;
            System.arraycopy(residual, residualOff + n * channels, out, o, channels);
            for (int j = 0; j < slotCount; j++) {
                final int slot = slots[slotsOff + n * slotCount + j];
                if (slot < 0) {
                    continue;
                }
                final float wj = weights[weightsOff + n * slotCount + j];
                final int yr = yOff + slot * channels;
                int c = 0;
                for (; c < vec; c += L) {
                    FloatVector.fromArray(S, y, yr + c).fma(FloatVector.broadcast(S, wj), FloatVector.fromArray(S, out,
                        o + c)).intoArray(out, o + c);
                }
                for (; c < channels; c++) {
                    out[o + c] = Math.fma(y[yr + c], wj, out[o + c]);
                }
            }
        }
    }

    @Override
    public void combineBackward(final float[] dout, final int doutOff, final float[] y, final int yOff,
        final int[] slots, final int slotsOff, final float[] weights, final int weightsOff, final int slotCount,
        final int gatedSlots, final float[] dy, final int dyOff, final float[] dgates, final int dgatesOff,
        final int channels, final int n0, final int n1) {
        final int vec = channels / L * L;
        for (int n = n0; n < n1; n++) {
            final int g = doutOff + n * channels;
            for (int j = 0; j < slotCount; j++) {
                final int slot = slots[slotsOff + n * slotCount + j];
                float dot = 0f;
                if (slot >= 0) {
                    final float wj = weights[weightsOff + n * slotCount + j];
                    final int yr = yOff + slot * channels;
                    final int dr = dyOff + slot * channels;
                    FloatVector acc = FloatVector.zero(S);
                    int c = 0;
                    for (; c < vec; c += L) {
                        final FloatVector gv = FloatVector.fromArray(S, dout, g + c);
                        gv.mul(wj).intoArray(dy, dr + c);
                        acc = gv.fma(FloatVector.fromArray(S, y, yr + c), acc);
                    }
                    dot = acc.reduceLanes(VectorOperators.ADD);
                    for (; c < channels; c++) {
                        dy[dr + c] = dout[g + c] * wj;
                        dot = Math.fma(dout[g + c], y[yr + c], dot);
                    }
                }
                if (j < gatedSlots) {
                    dgates[dgatesOff + n * gatedSlots + j] = dot;
                }
            }
        }
    }

    @Override
    public void scatterBackward(final float[] dperm, final int dpermOff, final int[] slots, final int slotsOff,
        final int slotCount, final float[] dx, final int dxOff, final int channels, final int n0, final int n1,
        final boolean accumulate) {
        for (int n = n0; n < n1; n++) {
            final int o = dxOff + n * channels;
            if (!accumulate) {
                java.util.Arrays.fill(dx, o, o + channels, 0f);
            }
            for (int j = 0; j < slotCount; j++) {
                final int slot = slots[slotsOff + n * slotCount + j];
                if (slot >= 0) {
                    add(dx, o, dperm, dpermOff + slot * channels, dx, o, channels);
                }
            }
        }
    }

    @Override
    public void add(final float[] a, final int aOff, final float[] b, final int bOff, final float[] y, final int yOff,
        final int count) {
        int j = 0;
        for (; j + L <= count; j += L) {
            FloatVector.fromArray(S, a, aOff + j).add(FloatVector.fromArray(S, b, bOff + j)).intoArray(y, yOff + j);
        }
        for (; j < count; j++) {
            y[yOff + j] = a[aOff + j] + b[bOff + j];
        }
    }
}
