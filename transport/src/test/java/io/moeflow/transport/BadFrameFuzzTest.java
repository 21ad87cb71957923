package io.moeflow.transport;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

import org.agrona.concurrent.UnsafeBuffer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import io.moeflow.transport.inprocess.InProcessCluster;

/**
 * Thousands of mutated frames thrown into the streams of running collectives (in-process back-end,
 * no frame authentication): plausible headers of the job's own operations with one field made
 * wrong (magic, version, kind, lengths, offsets, sequence, step, group, op, reduce op, codec, block
 * count), injected before and while the ranks run. Every run must end with the reference bits on
 * every rank or with a named error on some rank within a bound; none may hang or return a wrong
 * result. (A mutation into another valid header of the same operation cannot be told from data
 * without a tag: that is what frame authentication is for; see AeronFrameAuthenticationTest.)
 */
@Timeout(value = 300, unit = TimeUnit.SECONDS)
class BadFrameFuzzTest {
    static final CommunicatorConfig CONFIG = CommunicatorConfig.DEFAULT.withOpTimeoutNs(TimeUnit.MILLISECONDS.toNanos(400));
    static final int RUNS = 150;
    static final int FRAMES_PER_RUN = 24;
    static final int SMALL = 37;
    static final int LARGE = 6000;
    static final int BLOCK = 500;
    /** A run that neither finishes nor fails by then hangs: a few operation timeouts. */
    static final long RUN_BOUND_MS = 15_000;

    /** The script every rank runs; returns its outputs. Operations #0..#5 of group 0. */
    static float[][] script(final Communicator c) {
        final int p = c.size();
        final int rank = c.rank();
        final float[] small = RankThreads.values(1, rank, SMALL);
        c.allReduce(small, 0, SMALL, ReduceOp.SUM);
        final float[] large = RankThreads.values(2, rank, LARGE);
        c.allReduce(large, 0, LARGE, ReduceOp.AVERAGE);
        final float[] blocks = RankThreads.values(3, rank, p * BLOCK);
        c.reduceScatter(blocks, 0, BLOCK, ReduceOp.SUM, null);
        final float[] bcast = rank == 0 ? RankThreads.values(4, 0, LARGE) : new float[LARGE];
        c.broadcast(bcast, 0, LARGE, 0);
        final int[] counts = new int[p];
        Arrays.fill(counts, BLOCK);
        final float[] recv = new float[p * BLOCK];
        c.allToAll(RankThreads.values(5, rank, p * BLOCK), 0, counts, recv, 0, counts, null);
        c.barrier();
        return new float[][] {small, large, Arrays.copyOfRange(blocks, rank * BLOCK, (rank + 1) * BLOCK), bcast, recv};
    }

    @Test
    void shouldFinishRightOrFailByNameWhateverBadFramesArrive() throws Exception {
        // (the mutations that keep a frame plausible for a later operation, a wrong count, reduce op or codec
        // where the sequence number is a real one, fail the operation by name: a genuine peer that sends them
        // disagrees with this rank)
        int completed = 0;
        int failedByName = 0;
        int injected = 0;
        long dropped = 0;
        final List<String> failureKinds = new ArrayList<>();
        for (int run = 0; run < RUNS; run++) {
            final int p = 2 + run % 3;
            final float[][][] reference = reference(p);
            final SplittableRandom random = new SplittableRandom(run);
            final InProcessCluster cluster = InProcessCluster.create(p, 1 << 16, 1024);
            final List<Communicator> comms = cluster.communicators(CONFIG);
            final UnsafeBuffer frame = new UnsafeBuffer(new byte[256]);
            for (int i = 0; i < FRAMES_PER_RUN / 2; i++) {
                injected += injectOne(cluster, p, random, frame) ? 1 : 0; // waiting at the head of the streams
            }
            final float[][][] outputs = new float[p][][];
            final Throwable[] errors = new Throwable[p];
            final AtomicBoolean running = new AtomicBoolean(true);
            final int[] injectedWhileRunning = {0};
            final Thread injector = new Thread(() -> {
                final UnsafeBuffer own = new UnsafeBuffer(new byte[256]);
                for (int i = 0; i < FRAMES_PER_RUN / 2 && running.get(); i++) {
                    injectedWhileRunning[0] += injectOne(cluster, p, random.split(), own) ? 1 : 0;
                    java.util.concurrent.locks.LockSupport.parkNanos(20_000);
                }
            }, "injector");
            injector.start();
            final long start = System.nanoTime();
            RankThreads.run(p, RUN_BOUND_MS, rank -> {
                try {
                    outputs[rank] = script(comms.get(rank));
                } catch (final TransportException e) {
                    errors[rank] = e;
                }
            });
            running.set(false);
            injector.join(5000);
            injected += injectedWhileRunning[0];
            assertTrue(System.nanoTime() - start < TimeUnit.MILLISECONDS.toNanos(RUN_BOUND_MS), "run " + run + " bounded");
            boolean anyError = false;
            for (int r = 0; r < p; r++) {
                dropped += comms.get(r).counters().malformedFramesDropped() + comms.get(r).counters().unexpectedFramesDropped();
                if (errors[r] != null) {
                    anyError = true;
                    assertNotNull(errors[r].getMessage(), "run " + run + " rank " + r + ": an error without a message");
                    assertTrue(errors[r].getMessage().startsWith("rank " + r + ": "),
                        "run " + run + " rank " + r + ": the error names the rank: " + errors[r].getMessage());
                    failureKinds.add(kind(errors[r].getMessage()));
                } else {
                    for (int part = 0; part < reference[r].length; part++) {
                        assertArrayEquals(reference[r][part], outputs[r][part], "run " + run + " rank " + r + " part " + part
                            + ": a wrong result");
                    }
                }
            }
            if (anyError) {
                failedByName++;
            } else {
                completed++;
            }
            cluster.close();
        }
        System.out.println("bad-frame fuzz: " + RUNS + " runs, " + injected + " mutated frames injected, " + dropped
            + " dropped and counted; " + completed + " runs gave the reference bits, " + failedByName
            + " failed by name: " + summarize(failureKinds));
        assertTrue(injected >= 2000, "thousands of frames: " + injected);
        assertTrue(dropped > injected / 4, "most bad frames are dropped and counted: " + dropped + " of " + injected);
        assertTrue(completed > 0, "some runs finish despite the bad frames");
        assertEquals(RUNS, completed + failedByName);
    }

    @Test
    void shouldTimeOutWhileTheSilentPeersStreamCarriesOnlyGarbage() throws Exception {
        // dropped frames are not progress: a stream that only carries garbage must not keep an operation alive
        final InProcessCluster cluster = InProcessCluster.create(2, 1 << 16, 1024);
        final List<Communicator> comms = cluster.communicators(CONFIG); // 400 ms operation timeout
        final AtomicBoolean waiting = new AtomicBoolean(true);
        final long injectForNs = TimeUnit.SECONDS.toNanos(30);
        final int[] injected = {0};
        final Thread injector = new Thread(() -> {
            final UnsafeBuffer frame = new UnsafeBuffer(new byte[Wire.HEADER_LENGTH + 40]);
            Wire.putPreamble(frame, 0, Wire.KIND_DATA, (byte) 1);
            frame.putByte(Wire.OFFSET_MAGIC, (byte) 0x4E); // malformed: dropped on arrival
            final long end = System.nanoTime() + injectForNs;
            while (waiting.get() && System.nanoTime() < end) {
                injected[0] += cluster.inject(1, 0, frame, 0, frame.capacity()) ? 1 : 0;
                java.util.concurrent.locks.LockSupport.parkNanos(200_000);
            }
        }, "garbage-writer");
        injector.start();
        final long start = System.nanoTime();
        final PeerFailureException failure = org.junit.jupiter.api.Assertions.assertThrows(PeerFailureException.class,
            () -> comms.get(0).allReduce(new float[SMALL], 0, SMALL, ReduceOp.SUM)); // rank 1 never calls
        final long failedAfterNs = System.nanoTime() - start;
        waiting.set(false);
        injector.join(5000);
        assertTrue(failedAfterNs < injectForNs, "timed out while garbage still arrived, after " + failedAfterNs / 1_000_000 + " ms");
        assertEquals(PeerFailureException.Reason.TIMEOUT, failure.reason(), failure.getMessage());
        assertEquals(1, failure.peer(), failure.getMessage());
        assertTrue(comms.get(0).counters().malformedFramesDropped() > 0, comms.get(0).counters().toString());
        assertTrue(injected[0] > 0, "frames written");
        cluster.close();
    }

    private static float[][][] reference(final int p) {
        final List<Communicator> comms = InProcessCluster.create(p).communicators(CONFIG);
        final float[][][] out = new float[p][][];
        RankThreads.run(p, 30_000, rank -> out[rank] = script(comms.get(rank)));
        return out;
    }

    /** Writes one mutated frame into a random stream; false if its ring was full. */
    private static boolean injectOne(final InProcessCluster cluster, final int p, final SplittableRandom random,
                                     final UnsafeBuffer frame) {
        final int from = random.nextInt(p);
        final int to = (from + 1 + random.nextInt(p - 1)) % p;
        final int length = mutatedFrame(random, frame);
        return cluster.inject(from, to, frame, 0, length);
    }

    /**
     * A plausible data frame of one of the script's operations (op, sequence, step, counts and
     * lengths that fit), with exactly one field made invalid for every operation of the run.
     */
    static int mutatedFrame(final SplittableRandom random, final UnsafeBuffer frame) {
        frame.setMemory(0, frame.capacity(), (byte) 0);
        final byte[] ops = {1, 1, 2, 4, 5, 6};
        final int sequence = random.nextInt(ops.length);
        final byte op = ops[sequence];
        final int[] blocks = {SMALL, LARGE / 2, BLOCK, LARGE, BLOCK, 0};
        final int blockElements = blocks[sequence];
        int n = Math.min(blockElements, 1 + random.nextInt(40));
        int elementOffset = blockElements == 0 ? 0 : random.nextInt(Math.max(1, blockElements - n + 1));
        Wire.putPreamble(frame, 0, Wire.KIND_DATA, op);
        int group = 0;
        int seq = sequence;
        int step = random.nextInt(3);
        int codec = Wire.CODEC_RAW32;
        int reduceOp = sequence == 0 || sequence == 2 ? Wire.reduceOpCode(ReduceOp.SUM)
            : sequence == 1 ? Wire.reduceOpCode(ReduceOp.AVERAGE) : Wire.REDUCE_NONE;
        int block = blockElements;
        int length = Wire.HEADER_LENGTH + 4 * n;
        switch (random.nextInt(15)) {
            case 14:
                frame.putByte(Wire.OFFSET_OP, (byte) (8 + random.nextInt(100))); // no such operation
                break;
            case 0:
                frame.putByte(Wire.OFFSET_MAGIC, (byte) 0x4E);
                break;
            case 1:
                frame.putByte(Wire.OFFSET_VERSION, (byte) (Wire.VERSION + 1));
                break;
            case 2:
                frame.putByte(Wire.OFFSET_KIND, (byte) (6 + random.nextInt(200)));
                break;
            case 3:
                length = random.nextInt(Wire.HEADER_LENGTH); // shorter than a header
                break;
            case 4:
                n = n + 1 + random.nextInt(5); // more values claimed than carried
                break;
            case 5:
                elementOffset = blockElements + 1 + random.nextInt(100);
                break;
            case 6:
                elementOffset = -1 - random.nextInt(100);
                break;
            case 7:
                seq = -1 - random.nextInt(1000); // stale
                break;
            case 8:
                seq = 2000 + random.nextInt(1_000_000); // farther ahead than any peer can be
                break;
            case 9:
                group = 1 + random.nextInt(Integer.MAX_VALUE - 1); // a group that does not exist
                break;
            case 10:
                step = 1000 + random.nextInt(1000);
                break;
            case 11:
                codec = 3 + random.nextInt(250);
                break;
            case 12:
                reduceOp = 3 + random.nextInt(250);
                break;
            default:
                block = 1_000_000 + random.nextInt(1000); // a count no rank uses
                break;
        }
        frame.putInt(Wire.OFFSET_GROUP, group);
        frame.putInt(Wire.OFFSET_SEQUENCE, seq);
        frame.putInt(Wire.OFFSET_STEP, step);
        frame.putInt(Wire.OFFSET_ELEMENT_OFFSET, elementOffset);
        frame.putInt(Wire.OFFSET_BLOCK_ELEMENTS, block);
        frame.putByte(Wire.OFFSET_CODEC, (byte) codec);
        frame.putByte(Wire.OFFSET_REDUCE_OP, (byte) reduceOp);
        frame.putInt(Wire.OFFSET_FRAME_ELEMENTS, n);
        for (int i = Wire.HEADER_LENGTH; i + 4 <= Math.min(length, frame.capacity()); i += 4) {
            frame.putFloat(i, 1e9f); // a value that would show in any result
        }
        return Math.min(Math.max(length, 1), frame.capacity());
    }

    private static String kind(final String message) {
        for (final String k : new String[] {"the peer sends", "the peer reduces", "the peer runs", "sent a frame of",
            "no data moved", "failed earlier", "closed", "died"}) {
            if (message.contains(k)) {
                return k;
            }
        }
        return message.length() > 80 ? message.substring(0, 80) : message;
    }

    private static String summarize(final List<String> kinds) {
        final java.util.Map<String, Integer> counts = new java.util.TreeMap<>();
        kinds.forEach(k -> counts.merge(k, 1, Integer::sum));
        return counts.toString();
    }
}
