package io.moeflow.transport.aeron;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;

import io.aeron.Aeron;
import io.aeron.ExclusivePublication;
import org.agrona.concurrent.UnsafeBuffer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import io.moeflow.transport.Communicator;
import io.moeflow.transport.CommunicatorConfig;
import io.moeflow.transport.Communicators;
import io.moeflow.transport.IdleMode;
import io.moeflow.transport.JobToken;
import io.moeflow.transport.RankThreads;
import io.moeflow.transport.ReduceOp;
import io.moeflow.transport.TransportCounters;
import io.moeflow.transport.TransportException;
import io.moeflow.transport.Wire;

/**
 * A two-rank IPC job keeps computing correct results while a process with a wrong token, a writer
 * with no token and a writer of garbage use its streams; each is rejected or dropped, and counted.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class AeronSecurityTest {
    static final CommunicatorConfig CONFIG = CommunicatorConfig.DEFAULT.withOpTimeoutNs(TimeUnit.SECONDS.toNanos(20));

    /** What the intruder does while the job runs. */
    @FunctionalInterface
    interface Intrusion {
        void run(AeronTestJob job) throws Exception;
    }

    /** Runs a 2-rank job that all-reduces until {@code intrusion} is over, checking every result; returns rank 0's counters. */
    static TransportCounters runJobDuring(final Intrusion intrusion) throws Exception {
        try (AeronTestJob job = new AeronTestJob(); JobMediaDriver driver = JobMediaDriver.launch(job.ipcDirectory(), IdleMode.BACKOFF)) {
            final CountDownLatch connected = new CountDownLatch(2);
            final AtomicBoolean intrusionOver = new AtomicBoolean();
            final AtomicReference<Throwable> intruderError = new AtomicReference<>();
            final Thread intruder = new Thread(() -> {
                try {
                    connected.await(30, TimeUnit.SECONDS);
                    intrusion.run(job);
                } catch (final Throwable e) {
                    intruderError.set(e);
                } finally {
                    intrusionOver.set(true);
                }
            });
            intruder.start();
            final TransportCounters[] counters = new TransportCounters[2];
            RankThreads.run(2, 90_000, rank -> {
                try (Communicator c = Communicators.create(AeronTransport.connect(job.ipc(rank, 2)), CONFIG)) {
                    connected.countDown();
                    final int[] goOn = {1};
                    for (int i = 0; goOn[0] == 1; i++) {
                        final float[] buf = {rank + i, 1f};
                        c.allReduce(buf, 0, 2, ReduceOp.SUM);
                        assertEquals(2f * i + 1f, buf[0], "iteration " + i);
                        assertEquals(2f, buf[1]);
                        Thread.sleep(2);
                        goOn[0] = intrusionOver.get() && i > 10 ? 0 : 1;
                        c.broadcast(goOn, 0, 1, 0); // rank 0 decides for both, so they stop together
                    }
                    counters[rank] = c.counters();
                }
            });
            intruder.join(30_000);
            if (intruderError.get() != null) {
                throw new AssertionError("the intrusion itself failed", intruderError.get());
            }
            return counters[0];
        }
    }

    @Test
    void shouldRejectAProcessWithTheWrongTokenAndCarryOn() throws Exception {
        final AtomicReference<String> refusal = new AtomicReference<>();
        final TransportCounters counters = runJobDuring(job -> {
            final AeronTransportConfig impostor = new AeronTransportConfig(1, 2, AeronMedia.IPC, job.ipcDirectory(), false,
                null, job.jobId, JobToken.generate(), 1 << 20, AeronTransportConfig.DEFAULT_IPC_MTU_BYTES,
                AeronTransportConfig.DEFAULT_STREAM_ID_BASE, TimeUnit.MILLISECONDS.toNanos(800), 0, IdleMode.BACKOFF, false,
                JobMediaDriver.DEFAULT_FAILURE_BOUND_NS, null, null, 0);
            refusal.set(assertThrows(TransportException.class, () -> AeronTransport.connect(impostor)).getMessage());
        });
        assertTrue(counters.handshakesRejected() >= 1, counters.toString());
        assertTrue(refusal.get().contains("no authenticated connection with rank(s) [0]"), refusal.get());
    }

    @Test
    void shouldDropDataFromAWriterWithoutToken() throws Exception {
        final TransportCounters counters = runJobDuring(job -> writeRaw(job, 1, frame -> {
            // a plausible data frame for the job's next all-reduce, but from an unauthenticated stream
            Wire.putPreamble(frame, 0, Wire.KIND_DATA, (byte) 1);
            frame.putInt(Wire.OFFSET_BLOCK_ELEMENTS, 2);
            frame.putInt(Wire.OFFSET_FRAME_ELEMENTS, 2);
            frame.putFloat(Wire.HEADER_LENGTH, 1e9f);
            return Wire.HEADER_LENGTH + 8;
        }));
        assertTrue(counters.unauthenticatedFramesDropped() >= 1, counters.toString());
    }

    @Test
    void shouldDropAndCountMalformedFrames() throws Exception {
        final TransportCounters counters = runJobDuring(job -> writeRaw(job, 1, frame -> {
            frame.putLong(0, 0x1122334455667788L);
            return 12;
        }));
        assertTrue(counters.malformedFramesDropped() >= 1, counters.toString());
    }

    /** Builds one raw frame into the buffer and returns its length. */
    interface FrameWriter {
        int write(UnsafeBuffer frame);
    }

    /** Publishes a few raw frames on the stream from {@code from} to rank 0, with its own Aeron client. */
    static void writeRaw(final AeronTestJob job, final int from, final FrameWriter writer) throws InterruptedException {
        try (Aeron aeron = Aeron.connect(new Aeron.Context().aeronDirectoryName(job.ipcDirectory()));
             ExclusivePublication pub = aeron.addExclusivePublication("aeron:ipc",
                 AeronTransportConfig.DEFAULT_STREAM_ID_BASE + from * 2)) {
            final long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
            while (!pub.isConnected() && System.nanoTime() < deadline) {
                Thread.sleep(1);
            }
            final UnsafeBuffer frame = new UnsafeBuffer(new byte[256]);
            final int length = writer.write(frame);
            int sent = 0;
            while (sent < 5 && System.nanoTime() < deadline) {
                if (pub.offer(frame, 0, length) > 0) {
                    sent++;
                }
                Thread.sleep(5);
            }
            Thread.sleep(200); // let the job drain them before the publication goes away
        }
    }
}
