package io.moeflow.transport.fp8;

/**
 * Block-scaled FP8 codec: every block of {@link #BLOCK_LENGTH} values shares one power-of-two scale,
 * stored as a biased exponent byte (E8M0, as in the OCP microscaling formats), followed by one FP8
 * code per value.
 *
 * <p>Encoded layout of {@code count} values: {@code blockCount(count)} scale bytes, then {@code count}
 * code bytes; {@link #encodedLength(int)} bytes in all, about a quarter of float32.
 *
 * <p>Why power-of-two scales: dividing by the scale and multiplying back are exact, so decoding is
 * exact and re-encoding decoded values reproduces them bit for bit (a ring can forward a block it
 * received without adding error). The scale of a block is the smallest power of two {@code 2^k} with
 * {@code max|v| <= maxFinite * 2^k}. A block that holds a NaN or an infinity gets the scale byte
 * {@code 0xFF} and decodes to NaN everywhere, so overflow in a gradient is never hidden.
 *
 * <p>Rounding is to nearest, ties to even; values beyond the largest finite code saturate.
 * Instances hold a small scratch array: use one instance per thread.
 */
public final class Fp8Codec {
    /** Values per shared scale (32, as in the OCP MX formats). */
    public static final int BLOCK_LENGTH = 32;
    /** Scale byte of a block that contained a NaN or an infinity. */
    public static final int NAN_SCALE = 0xFF;

    private static final int SCALE_BIAS = 127;
    private static final int FLOAT_MANTISSA_BITS = 23;
    private static final float ROUNDING_MAGIC = 8388608.0f; // 2^23: adding it rounds [0, 2^22) to an integer
    private static final int ROUNDING_MAGIC_BITS = 0x4B000000;

    private final Fp8Format format;
    private final float[] decodeTable = new float[256];
    private final int mantissaDrop;
    private final int roundingBias;
    private final int rebias;
    private final int minNormalBits;
    private final float subnormalScale;
    private final int maxFiniteBits;
    private final int maxExponent;
    private final float[] block = new float[BLOCK_LENGTH];
    private final int[] codes = new int[BLOCK_LENGTH];
    /** Lane-parallel encoder, or null where the Vector API module is absent or lanes do not divide a block. */
    private final Fp8VectorEncoder vector;

    /** Whether the {@code jdk.incubator.vector} module is in this JVM (the launcher and tests add it). */
    static final boolean VECTOR_API_PRESENT = ModuleLayer.boot().findModule("jdk.incubator.vector").isPresent();

    /** Creates a codec for one format; uses the Vector API when the JVM has it. */
    public Fp8Codec(final Fp8Format format) {
        this(format, VECTOR_API_PRESENT);
    }

    /** Creates a codec, with or without the lane-parallel encoder (tests compare the two). */
    Fp8Codec(final Fp8Format format, final boolean useVectorApi) {
        this.format = format;
        for (int code = 0; code < 256; code++) {
            decodeTable[code] = format.decodeByDefinition(code);
        }
        mantissaDrop = FLOAT_MANTISSA_BITS - format.mantissaBits;
        roundingBias = (1 << (mantissaDrop - 1)) - 1;
        rebias = (127 - format.bias) << format.mantissaBits;
        minNormalBits = (127 - format.bias + 1) << FLOAT_MANTISSA_BITS;
        subnormalScale = Math.scalb(1.0f, format.bias - 1 + format.mantissaBits);
        maxFiniteBits = Float.floatToRawIntBits(format.maxFinite);
        maxExponent = Math.getExponent(format.maxFinite);
        Fp8VectorEncoder v = null;
        if (useVectorApi) {
            v = new Fp8VectorEncoder(mantissaDrop, roundingBias, rebias, minNormalBits, subnormalScale, maxFiniteBits,
                format.maxFiniteCode, ROUNDING_MAGIC, ROUNDING_MAGIC_BITS);
            if (BLOCK_LENGTH % Fp8VectorEncoder.LANES != 0) {
                v = null;
            }
        }
        vector = v;
    }

    /** True if this codec encodes with the Vector API. */
    boolean isVectorized() {
        return vector != null;
    }

    /** The format this codec writes. */
    public Fp8Format format() {
        return format;
    }

    /** Number of scale blocks for {@code count} values. */
    public static int blockCount(final int count) {
        return (count + BLOCK_LENGTH - 1) / BLOCK_LENGTH;
    }

    /** Bytes that {@code count} encoded values occupy (scales plus codes). */
    public static int encodedLength(final int count) {
        return count + blockCount(count);
    }

    /** The value of one code (exact). */
    public float decode(final int code) {
        return decodeTable[code & 0xFF];
    }

    /**
     * Encodes one value that is already divided by its block scale: round to nearest even,
     * saturate beyond the largest finite value, NaN stays NaN.
     */
    public int encode(final float scaled) {
        final int bits = Float.floatToRawIntBits(scaled);
        final int sign = (bits >>> 24) & 0x80;
        final int abs = bits & 0x7FFFFFFF;
        if (abs >= maxFiniteBits) {
            return abs > 0x7F800000 ? sign | format.nanCode : sign | format.maxFiniteCode;
        }
        if (abs >= minNormalBits) {
            // Round the float mantissa to the format's width (ties to even); a carry bumps the exponent.
            final int rounded = abs + roundingBias + ((abs >>> mantissaDrop) & 1);
            return sign | ((rounded >>> mantissaDrop) - rebias);
        }
        // Subnormal range: the code is the value in units of the smallest subnormal, rounded to even.
        final float units = Float.intBitsToFloat(abs) * subnormalScale;
        return sign | (Float.floatToRawIntBits(units + ROUNDING_MAGIC) - ROUNDING_MAGIC_BITS);
    }

    /** The scale exponent {@code k} of a block whose largest magnitude is {@code maxAbs} (finite, >= 0). */
    public int scaleExponent(final float maxAbs) {
        if (maxAbs == 0.0f) {
            return 0;
        }
        int k = Math.max(Math.getExponent(maxAbs) - maxExponent, -SCALE_BIAS);
        if (maxAbs * powerOfTwo(-k) > format.maxFinite) {
            k++;
        }
        return k;
    }

    /** {@code 2^k} for {@code k} in [-127, 127], exactly. */
    public static float powerOfTwo(final int k) {
        return k >= -126 ? Float.intBitsToFloat((k + 127) << FLOAT_MANTISSA_BITS) : Float.intBitsToFloat(0x00400000);
    }

    /**
     * Encodes {@code src[srcOff .. srcOff+count)} into {@code dst} from {@code dstOff}
     * ({@link #encodedLength(int)} bytes).
     *
     * @param residual     error-feedback residual, or null: when given, {@code src + residual} is encoded
     *                     and the residual becomes the part that the encoding lost
     *                     ({@code (src + residual) - decoded}), to be added back next time
     * @param residualOff  index in {@code residual} of the first value
     * @param writeBack    when true, {@code src} is replaced by the decoded values (what receivers will see)
     */
    public void encode(final float[] src, final int srcOff, final int count, final float[] residual,
                       final int residualOff, final boolean writeBack, final byte[] dst, final int dstOff) {
        final int blocks = blockCount(count);
        final int codeBase = dstOff + blocks;
        final float[] values = block;
        for (int b = 0; b < blocks; b++) {
            final int start = b * BLOCK_LENGTH;
            final int n = Math.min(BLOCK_LENGTH, count - start);
            float maxAbs = 0.0f;
            if (residual == null) {
                System.arraycopy(src, srcOff + start, values, 0, n);
            } else {
                for (int i = 0; i < n; i++) {
                    values[i] = src[srcOff + start + i] + residual[residualOff + start + i];
                }
            }
            if (vector != null && n == BLOCK_LENGTH) {
                maxAbs = Fp8VectorEncoder.maxAbs(values, n);
            } else {
                for (int i = 0; i < n; i++) {
                    final float a = Math.abs(values[i]);
                    maxAbs = a > maxAbs ? a : maxAbs; // a NaN never wins here; the check below catches it
                }
            }
            boolean finite = maxAbs <= Float.MAX_VALUE;
            for (int i = 0; i < n && finite; i++) {
                finite = values[i] == values[i];
            }
            if (!finite) {
                dst[dstOff + b] = (byte) NAN_SCALE;
                for (int i = 0; i < n; i++) {
                    dst[codeBase + start + i] = 0;
                    if (residual != null) {
                        residual[residualOff + start + i] = 0.0f; // do not carry a NaN into the next step
                    }
                    if (writeBack) {
                        src[srcOff + start + i] = Float.NaN;
                    }
                }
                continue;
            }
            final int k = scaleExponent(maxAbs);
            dst[dstOff + b] = (byte) (k + SCALE_BIAS);
            final float inverse = powerOfTwo(-k);
            final int codeAt = codeBase + start;
            if (vector != null && n == BLOCK_LENGTH) {
                vector.encode(values, n, inverse, codes);
                for (int i = 0; i < n; i++) {
                    dst[codeAt + i] = (byte) codes[i];
                }
                if (residual != null || writeBack) {
                    Fp8VectorEncoder.decodeBack(codes, n, decodeTable, powerOfTwo(k), values, residual, residualOff + start,
                        writeBack ? src : null, srcOff + start);
                }
                continue;
            } else {
                for (int i = 0; i < n; i++) {
                    dst[codeAt + i] = (byte) encode(values[i] * inverse);
                }
            }
            if (residual != null || writeBack) {
                final float scale = powerOfTwo(k);
                for (int i = 0; i < n; i++) {
                    final float decoded = decodeTable[dst[codeAt + i] & 0xFF] * scale;
                    if (residual != null) {
                        residual[residualOff + start + i] = values[i] - decoded;
                    }
                    if (writeBack) {
                        src[srcOff + start + i] = decoded;
                    }
                }
            }
        }
    }

    /** Decodes {@code count} values encoded at {@code src[srcOff..]} into {@code dst[dstOff..]}. */
    public void decode(final byte[] src, final int srcOff, final int count, final float[] dst, final int dstOff) {
        final int blocks = blockCount(count);
        final int codeBase = srcOff + blocks;
        for (int b = 0; b < blocks; b++) {
            final int start = b * BLOCK_LENGTH;
            final int n = Math.min(BLOCK_LENGTH, count - start);
            final int scaleByte = src[srcOff + b] & 0xFF;
            if (scaleByte == NAN_SCALE) {
                for (int i = 0; i < n; i++) {
                    dst[dstOff + start + i] = Float.NaN;
                }
                continue;
            }
            final float scale = powerOfTwo(scaleByte - SCALE_BIAS);
            for (int i = 0; i < n; i++) {
                dst[dstOff + start + i] = decodeTable[src[codeBase + start + i] & 0xFF] * scale;
            }
        }
    }
}
