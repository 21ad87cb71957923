package io.moeflow.curriculum;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SplitMix64Test {

    @Test
    void shouldMatchPublishedSplitMix64Outputs() {
        // reference values of SplitMix64 seeded with 0 (Vigna's splitmix64.c, as used to seed xoshiro)
        final SplitMix64 r = new SplitMix64(0);
        assertEquals(0xE220A8397B1DCDAFL, r.nextLong());
        assertEquals(0x6E789E6AA1B965F4L, r.nextLong());
        assertEquals(0x06C45D188009454FL, r.nextLong());
    }

    @Test
    void shouldContinueTheSameStreamFromASavedState() {
        final SplitMix64 a = new SplitMix64(42);
        a.nextLong();
        final SplitMix64 b = new SplitMix64(0);
        b.setState(a.state());
        for (int i = 0; i < 100; i++) {
            assertEquals(a.nextLong(), b.nextLong());
        }
    }

    @Test
    void shouldDrawBoundedIntsUniformly() {
        final SplitMix64 r = new SplitMix64(7);
        final int bound = 6;
        final int draws = 60_000;
        final int[] counts = new int[bound];
        for (int i = 0; i < draws; i++) {
            counts[r.nextInt(bound)]++;
        }
        // chi-square with 5 degrees of freedom: P(X > 20.5) < 0.001
        double chi2 = 0;
        for (final int c : counts) {
            final double e = draws / (double) bound;
            chi2 += (c - e) * (c - e) / e;
        }
        assertTrue(chi2 < 20.5, "chi2=" + chi2);
        for (int i = 0; i < 1000; i++) {
            final double u = r.nextDouble();
            assertTrue(u >= 0 && u < 1, "u=" + u);
        }
        assertEquals(0, r.nextInt(1));
        assertThrows(IllegalArgumentException.class, () -> r.nextInt(0));
    }
}
