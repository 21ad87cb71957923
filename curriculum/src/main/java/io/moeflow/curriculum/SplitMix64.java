package io.moeflow.curriculum;

/**
 * SplitMix64 (Steele, Lea and Flood, "Fast splittable pseudorandom number generators", OOPSLA 2014):
 * a 64-bit state that advances by a fixed odd constant, and a mixing function applied to each state.
 *
 * <p>Chosen because its whole state is one {@code long}: a checkpoint stores it with {@link #state()} and a
 * resumed run continues the identical stream after {@link #setState(long)}. It is fast, passes BigCrush, and
 * has no hidden caching (unlike {@code java.util.Random#nextGaussian}). Not thread-safe: one instance per user.
 */
public final class SplitMix64 {
    /** The golden-ratio increment, 2^64 / phi rounded to odd. */
    private static final long GAMMA = 0x9E3779B97F4A7C15L;
    /** 2^31: values drawn by {@link #nextInt(int)} are uniform in [0, 2^31). */
    private static final long TWO_POW_31 = 1L << 31;

    private long state;

    /** A generator whose first output is {@code mix(seed + GAMMA)}. */
    public SplitMix64(final long seed) {
        this.state = seed;
    }

    /** The whole generator state: {@code new SplitMix64(s)} or {@code setState(s)} resumes the stream exactly. */
    public long state() {
        return state;
    }

    /** Restores a state returned by {@link #state()}. */
    public void setState(final long state) {
        this.state = state;
    }

    /** Next 64 uniformly distributed bits. */
    public long nextLong() {
        state += GAMMA;
        return mix(state);
    }

    /**
     * Uniform integer in [0, bound), without modulo bias: 31-bit draws at or above the largest multiple of
     * {@code bound} are rejected and redrawn (fewer than one redraw in two for any bound).
     */
    public int nextInt(final int bound) {
        if (bound <= 0) {
            throw new IllegalArgumentException("bound=" + bound + " must be positive");
        }
        final long limit = TWO_POW_31 - TWO_POW_31 % bound;
        long r;
        do {
            r = nextLong() >>> 33; // r: uniform in [0, 2^31)
        } while (r >= limit);
        return (int) (r % bound);
    }

    /** Uniform double in [0, 1) with 53 random bits. */
    public double nextDouble() {
        return (nextLong() >>> 11) * 0x1.0p-53;
    }

    /** The SplitMix64 output function: a bijective 64-bit finaliser, also used here to hash. */
    public static long mix(final long z0) {
        long z = z0;
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }

    /** A 64-bit hash of {@code bytes[offset..offset+length)}: FNV-1a, then {@link #mix(long)} to spread low-entropy input. */
    public static long hash(final long seed, final byte[] bytes, final int offset, final int length) {
        long h = 0xCBF29CE484222325L ^ seed;
        for (int i = offset; i < offset + length; i++) {
            h ^= bytes[i] & 0xFF;
            h *= 0x100000001B3L;
        }
        return mix(h);
    }
}
