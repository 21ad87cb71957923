package io.moeflow.optimizer;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * The validated segment list shared by {@link AdamW} and {@link AdamWReference}: segments sorted by
 * offset (so a range lookup is a binary search), the slab length, and the argument checks both
 * optimizers make. Elements of the slab that lie in no segment (gaps) are not parameters: they are
 * neither clipped nor updated.
 */
final class SegmentLayout {

    private final List<ParamSegment> inGivenOrder;
    private final int[] offsets;
    private final int[] ends;
    private final boolean[] decay;
    private final int slabLength;

    SegmentLayout(final List<ParamSegment> segments) {
        if (segments == null || segments.isEmpty()) {
            throw new IllegalArgumentException("segments=" + segments + " must list at least one ParamSegment");
        }
        final Set<String> names = new HashSet<>();
        for (int i = 0; i < segments.size(); i++) {
            final ParamSegment s = segments.get(i);
            if (s == null) {
                throw new IllegalArgumentException("segments[" + i + "]=null: every segment must be non-null");
            }
            if (!names.add(s.name())) {
                throw new IllegalArgumentException("segments[" + i + "].name=" + s.name()
                        + " appears twice: segment names must be unique");
            }
        }
        this.inGivenOrder = List.copyOf(segments);
        final List<ParamSegment> sorted = new ArrayList<>(segments);
        sorted.sort(Comparator.comparingInt(ParamSegment::offset).thenComparingInt(ParamSegment::end));
        final int n = sorted.size();
        this.offsets = new int[n];
        this.ends = new int[n];
        this.decay = new boolean[n];
        int maxEnd = 0;
        for (int i = 0; i < n; i++) {
            final ParamSegment s = sorted.get(i);
            if (i > 0 && s.offset() < ends[i - 1]) {
                final ParamSegment prev = sorted.get(i - 1);
                throw new IllegalArgumentException("segment " + s.name() + " [" + s.offset() + ", " + s.end()
                        + ") overlaps segment " + prev.name() + " [" + prev.offset() + ", " + prev.end()
                        + "): segments may not overlap");
            }
            offsets[i] = s.offset();
            ends[i] = s.end();
            decay[i] = s.decay();
            maxEnd = Math.max(maxEnd, s.end());
        }
        this.slabLength = maxEnd;
    }

    /** The segments in the order they were given. */
    List<ParamSegment> segments() {
        return inGivenOrder;
    }

    int slabLength() {
        return slabLength;
    }

    /** Number of segments. */
    int count() {
        return offsets.length;
    }

    /** Offset of the {@code s}-th segment in offset order. */
    int offset(final int s) {
        return offsets[s];
    }

    /** End (exclusive) of the {@code s}-th segment in offset order. */
    int end(final int s) {
        return ends[s];
    }

    /** Whether the {@code s}-th segment in offset order is weight-decayed. */
    boolean decay(final int s) {
        return decay[s];
    }

    /** Index (offset order) of the first segment ending after {@code from}; {@link #count()} if none. */
    int firstEndingAfter(final int from) {
        // ends is non-decreasing because segments are sorted by offset and do not overlap
        int lo = 0;
        int hi = ends.length;
        while (lo < hi) {
            final int mid = (lo + hi) >>> 1;
            if (ends[mid] > from) {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        return lo;
    }

    /** Fails unless {@code array} covers the slab. */
    void checkCoversSlab(final String what, final float[] array) {
        if (array == null) {
            throw new IllegalArgumentException(what + "=null: expected a float[] of at least " + slabLength
                    + " elements (the slab)");
        }
        if (array.length < slabLength) {
            throw new IllegalArgumentException(what + ".length=" + array.length + " is shorter than the slab ("
                    + slabLength + " elements = max(offset + length) over the segments)");
        }
    }

    /** Fails unless {@code [from, to)} is a range of the slab. */
    void checkRange(final int from, final int to) {
        if (from < 0 || to < from || to > slabLength) {
            throw new IllegalArgumentException("range from=" + from + " to=" + to
                    + " is not a sub-range of the slab [0, " + slabLength + ")");
        }
    }

    /** Fails unless {@code array} has exactly the slab's length (state arrays). */
    void checkSlabSized(final String what, final float[] array) {
        if (array == null || array.length != slabLength) {
            throw new IllegalArgumentException(what + ".length=" + (array == null ? "null" : array.length)
                    + " must equal the slab length " + slabLength);
        }
    }
}
