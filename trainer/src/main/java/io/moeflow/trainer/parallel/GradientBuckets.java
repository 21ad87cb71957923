package io.moeflow.trainer.parallel;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import io.moeflow.transport.CollectiveHandle;
import io.moeflow.transport.Communicator;
import io.moeflow.transport.Fp8Compression;
import io.moeflow.transport.ReduceOp;
import io.moeflow.transport.fp8.Fp8Format;

/**
 * The data-parallel reduction of the replicated (dense) gradients: fixed buckets of the gradient slab,
 * each all-reduced ({@link Communicator#allReduceAsync}, average over the job) as soon as backward has
 * finished writing it, while backward goes on below it.
 *
 * <p>Backward runs from the last layer to the first and the slab is laid out in forward order, so
 * the final gradients always form a suffix {@code [completeFrom, end)} of the slab. Buckets are
 * contiguous ranges of the reduced tensors, at most {@code bucketBytes} long, cut from the end of
 * the slab backwards and never across a tensor that is not reduced here; {@link #allReduceCompleted}
 * launches, in that fixed order, every bucket that lies inside the final suffix. Every rank has the
 * same buckets and launches them in the same order (a collective-order requirement).
 *
 * <p>With FP8 compression each bucket has its own error-feedback residual (rank state:
 * {@link #copyResidualTo}/{@link #restoreResidualFrom} move it in slab coordinates, one value per
 * gradient element, 0 where nothing is compressed, so it survives a change of bucket size).
 *
 * <p>In a one-process run the plan is empty and every call returns at once. Not thread-safe: the
 * training thread drives it.
 */
public final class GradientBuckets {
    private final Communicator group;
    private final float[] grads;
    private final int[] start;
    private final int[] length;
    private final Fp8Compression[] compression;
    private final CollectiveHandle[] inFlight;
    private final long timeoutNs;
    private int launched;

    /**
     * @param group       the ranks that hold these tensors (the whole job for dense tensors); null in one process
     * @param grads       the gradient slab (live)
     * @param ranges      {offset, length} of every tensor reduced here, in slab order, not overlapping
     * @param config      bucket size and compression
     * @param timeoutNs   how long {@link #await} waits for one bucket
     */
    public GradientBuckets(final Communicator group, final float[] grads, final List<int[]> ranges,
                           final ParallelConfig config, final long timeoutNs) {
        this.group = group;
        this.grads = grads;
        this.timeoutNs = timeoutNs;
        final List<int[]> buckets = new ArrayList<>();
        if (group != null && group.size() > 1) {
            plan(ranges, config.bucketBytes() / Float.BYTES, buckets);
        }
        final int n = buckets.size();
        this.start = new int[n];
        this.length = new int[n];
        this.compression = new Fp8Compression[n];
        this.inFlight = new CollectiveHandle[n];
        for (int i = 0; i < n; i++) {
            start[i] = buckets.get(i)[0];
            length[i] = buckets.get(i)[1];
            if (config.gradCompression() == ParallelConfig.GradCompression.FP8) {
                compression[i] = Fp8Compression.withErrorFeedback(Fp8Format.E4M3, length[i]);
            }
        }
    }

    // Merges touching ranges into runs, then cuts each run from its end into buckets of at most maxFloats.
    private static void plan(final List<int[]> ranges, final int maxFloats, final List<int[]> out) {
        final List<int[]> runs = new ArrayList<>();
        for (final int[] r : ranges) {
            if (r[1] == 0) {
                continue;
            }
            final int[] last = runs.isEmpty() ? null : runs.get(runs.size() - 1);
            if (last != null && r[0] < last[0] + last[1]) {
                throw new IllegalArgumentException("gradient ranges must be in slab order and disjoint: " + r[0]
                    + " starts inside [" + last[0] + ", " + (last[0] + last[1]) + ")");
            }
            if (last != null && last[0] + last[1] == r[0]) {
                last[1] += r[1];
            } else {
                runs.add(new int[] {r[0], r[1]});
            }
        }
        for (int i = runs.size() - 1; i >= 0; i--) {
            final int runStart = runs.get(i)[0];
            int end = runStart + runs.get(i)[1];
            while (end > runStart) {
                final int from = Math.max(runStart, end - maxFloats);
                out.add(new int[] {from, end - from});
                end = from;
            }
        }
    }

    /** Buckets in launch order (from the end of the slab). */
    public int count() {
        return start.length;
    }

    /** First slab element of bucket {@code i}. */
    public int start(final int i) {
        return start[i];
    }

    /** Elements of bucket {@code i}. */
    public int length(final int i) {
        return length[i];
    }

    /**
     * Starts the all-reduce of every bucket not yet started that lies in {@code [completeFrom, end)}:
     * call it after each part of backward with the offset from which the gradients are final.
     */
    public void allReduceCompleted(final int completeFrom) {
        while (launched < start.length && start[launched] >= completeFrom) {
            inFlight[launched] = group.allReduceAsync(grads, start[launched], length[launched], ReduceOp.AVERAGE,
                compression[launched]);
            launched++;
        }
    }

    /**
     * Waits for every bucket; afterwards the reduced tensors hold the job's average gradient, the same
     * bits on every rank.
     *
     * @throws IllegalStateException if a bucket was never started (backward did not report its end)
     */
    public void await() {
        if (launched != start.length) {
            throw new IllegalStateException("only " + launched + " of " + start.length + " gradient buckets were "
                + "started: report the end of backward with allReduceCompleted(0)");
        }
        for (int i = 0; i < launched; i++) {
            inFlight[i].await(timeoutNs);
            inFlight[i] = null;
        }
        launched = 0;
    }

    /** Whether the buckets are sent as FP8 with error feedback. */
    public boolean compressed() {
        return start.length > 0 && compression[0] != null;
    }

    /** Writes the error-feedback residual into {@code slab} (slab coordinates; untouched where nothing is compressed). */
    public void copyResidualTo(final float[] slab) {
        for (int i = 0; i < start.length; i++) {
            if (compression[i] != null) {
                System.arraycopy(compression[i].residual(), 0, slab, start[i], length[i]);
            }
        }
    }

    /** Restores the residual saved by {@link #copyResidualTo} (for a bitwise resume of a compressed run). */
    public void restoreResidualFrom(final float[] slab) {
        for (int i = 0; i < start.length; i++) {
            if (compression[i] != null) {
                System.arraycopy(slab, start[i], compression[i].residual(), 0, length[i]);
            }
        }
    }

    @Override
    public String toString() {
        return start.length + " buckets" + (compressed() ? " (fp8+error-feedback)" : "") + " "
            + Arrays.toString(length);
    }
}
