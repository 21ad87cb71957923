package io.moeflow.transport;

/** Membership and sequence counters of one communicator group (engine-internal, single-threaded use). */
final class Group {
    final int id;
    /** Job-wide ranks of the members, in group-rank order. */
    final int[] members;
    /** This process's position in {@link #members}. */
    final int me;
    /** Sequence number of the next collective; every member issues collectives in the same order. */
    int nextSequence;
    /** Sequence numbers of the next point-to-point message to / from each member. */
    final int[] nextSendSequence;
    final int[] nextRecvSequence;
    /** Number of splits made from this group so far (part of the child's id). */
    int splits;
    /** Whether this group's operations run on the urgent lane (see {@link Communicator#urgent()}). */
    final boolean urgent;
    /**
     * Which bulk lane the group's operations use, before wrapping at the number of bulk lanes: 0 for
     * the job-wide group, parent's slot + split index + 1 for a split (the same on every member).
     */
    final int slot;

    Group(final int id, final int[] members, final int me) {
        this(id, members, me, false, 0);
    }

    Group(final int id, final int[] members, final int me, final boolean urgent, final int slot) {
        this.id = id;
        this.members = members;
        this.me = me;
        this.urgent = urgent;
        this.slot = slot;
        this.nextSendSequence = new int[members.length];
        this.nextRecvSequence = new int[members.length];
    }

    int size() {
        return members.length;
    }

    /** Job-wide rank of the member at {@code groupRank}. */
    int global(final int groupRank) {
        return members[groupRank];
    }

    /** The urgent twin of this group: same members, its own id and sequence numbers. */
    Group urgentTwin() {
        return new Group(childId(id, -1, 0), members, me, true, slot);
    }

    /** Deterministic id of a child group: same on every member, distinct for distinct splits and colors. */
    static int childId(final int parentId, final int splitIndex, final int color) {
        long h = 0x9E3779B97F4A7C15L * (parentId + 1L);
        h ^= (h >>> 29) + 0xBF58476D1CE4E5B9L * (splitIndex + 1L);
        h ^= (h >>> 31) + 0x94D049BB133111EBL * (color + 0x100000000L);
        h ^= h >>> 33;
        final int id = (int) h & 0x7FFFFFFF;
        return id == 0 ? 1 : id; // 0 is the job-wide group
    }
}
