package io.moeflow.curriculum;

/**
 * DeepSpeed's curriculum pacing functions ({@code deepspeed/runtime/data_pipeline/curriculum_scheduler.py}), with
 * the same integer rounding: they map a 1-based global step to the maximum accepted difficulty, an integer on the
 * config's difficulty scale. Pure functions of the step, so a resumed run needs only the step to continue.
 *
 * <p>DeepSpeed updates its difficulty every step and stops once it reaches {@code max}; because both functions
 * below are non-decreasing in the step, evaluating them directly at any step gives the same value.
 */
public final class Pacing {
    private Pacing() {
    }

    /**
     * {@code fixed_root} (and {@code fixed_linear} with {@code rootDegree = 1}):
     * <pre>
     *   d = floor((step / totalSteps)^(1/rootDegree) * (max - min) + min)   // IEEE double, like Python floats
     *   d = d - d % difficultyStep                                          // round down to a multiple of difficultyStep
     *   d = min(d, max)
     * </pre>
     * Note the rounding is to multiples of {@code difficultyStep} from 0, not from {@code min}, so {@code d} may
     * start below {@code min} when {@code min} is not a multiple (DeepSpeed's behaviour, kept on purpose).
     * The power uses {@link StrictMath#pow} (fdlibm) so every JVM gives the same bits.
     */
    public static int fixedRoot(final long step, final long totalSteps, final int min, final int max,
                                final int difficultyStep, final int rootDegree) {
        final double progress = (double) step / totalSteps;
        final double root = rootDegree == 1 ? progress : StrictMath.pow(progress, 1.0 / rootDegree);
        long d = (long) Math.floor(root * (max - min) + min);
        d -= d % difficultyStep;
        return (int) Math.min(d, max);
    }

    /**
     * {@code fixed_discrete}: {@code difficulties[k]} where k is the number of {@code maxSteps} entries the step
     * has passed ({@code step > maxSteps[i]}). With {@code difficulties = {1,2,3}, maxSteps = {5,10}}: steps 1-5
     * give 1, steps 6-10 give 2, steps 11 and later give 3. {@code maxSteps} is strictly increasing and one
     * shorter than {@code difficulties}.
     */
    public static int fixedDiscrete(final long step, final int[] difficulties, final long[] maxSteps) {
        return difficulties[discreteLevel(step, maxSteps)];
    }

    /** Index k used by {@link #fixedDiscrete}: how many {@code maxSteps} the step has passed. */
    static int discreteLevel(final long step, final long[] maxSteps) {
        int k = 0;
        while (k < maxSteps.length && step > maxSteps[k]) {
            k++;
        }
        return k;
    }
}
