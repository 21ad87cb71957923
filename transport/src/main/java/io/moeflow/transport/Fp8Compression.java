package io.moeflow.transport;

import java.util.Arrays;

import io.moeflow.transport.fp8.Fp8Codec;
import io.moeflow.transport.fp8.Fp8Format;

/**
 * Asks a float collective to send FP8 instead of float32 (about 3.9x fewer bytes on the wire: one
 * byte per value plus one scale byte per {@link Fp8Codec#BLOCK_LENGTH} values), optionally with error
 * feedback.
 *
 * <p>Error feedback: every value this rank quantizes for the first time is quantized as
 * {@code value + residual}, and the part the quantization lost becomes the new residual, added back
 * at the next call with the same buffer. The error of the running sum over many steps then stays
 * bounded instead of growing with the number of steps. The residual is state: keep one instance per
 * buffer region, and save {@link #residual()} in checkpoints for a bitwise resume.
 *
 * <p>Results stay deterministic and identical on every rank: a rank that owns a reduced block
 * replaces its own copy by the decoded values it sends, and forwarded blocks re-encode exactly.
 */
public final class Fp8Compression {
    private final Fp8Format format;
    private final float[] residual;

    private Fp8Compression(final Fp8Format format, final float[] residual) {
        if (format == null) {
            throw new IllegalArgumentException("format=null: give Fp8Format.E4M3 or E5M2");
        }
        this.format = format;
        this.residual = residual;
    }

    /** FP8 without error feedback (for example for token dispatch, which is not accumulated). */
    public static Fp8Compression of(final Fp8Format format) {
        return new Fp8Compression(format, null);
    }

    /** FP8 with an error-feedback residual for operations of exactly {@code count} values. */
    public static Fp8Compression withErrorFeedback(final Fp8Format format, final int count) {
        if (count < 0) {
            throw new IllegalArgumentException("count=" + count + ": must be >= 0");
        }
        return new Fp8Compression(format, new float[count]);
    }

    public Fp8Format format() {
        return format;
    }

    /** The residual carried to the next call (live array, one entry per value), or null without feedback. */
    public float[] residual() {
        return residual;
    }

    /** Forgets the carried residual. */
    public void resetResidual() {
        if (residual != null) {
            Arrays.fill(residual, 0.0f);
        }
    }

    int wireCodec() {
        return format == Fp8Format.E4M3 ? Wire.CODEC_FP8_E4M3 : Wire.CODEC_FP8_E5M2;
    }

    @Override
    public String toString() {
        return format.cliName() + (residual == null ? "" : "+error-feedback");
    }
}
