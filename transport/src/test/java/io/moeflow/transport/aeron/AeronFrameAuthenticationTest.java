package io.moeflow.transport.aeron;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.DatagramPacket;
import java.net.DatagramSocket;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.net.SocketException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import io.aeron.protocol.DataHeaderFlyweight;

import io.moeflow.transport.Communicator;
import io.moeflow.transport.CommunicatorConfig;
import io.moeflow.transport.Communicators;
import io.moeflow.transport.RankThreads;
import io.moeflow.transport.ReduceOp;
import io.moeflow.transport.ReferenceCollectives;
import io.moeflow.transport.TransportCounters;
import io.moeflow.transport.Wire;
import io.moeflow.transport.bench.LoopbackPorts;

/**
 * An on-path attacker with a plain {@link DatagramSocket} and no token: a relay between rank 0 and
 * rank 1 that sees every datagram (session id, term id and offset included) and, just before
 * forwarding a genuine data datagram, sends rank 1 a forged copy for the same stream position (a
 * flipped payload), or a genuine earlier datagram rewritten to that position (a replay). Aeron keeps
 * the first frame it receives for a position, so without frame authentication the forgery wins.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class AeronFrameAuthenticationTest {
    static final CommunicatorConfig CONFIG = CommunicatorConfig.DEFAULT.withOpTimeoutNs(TimeUnit.SECONDS.toNanos(20));
    static final int N = 10_000;
    static final int ROUNDS = 4;

    @Test
    void shouldDropForgedAndReplayedDatagramsAndKeepTheResult() throws Exception {
        final Outcome outcome = runWithAttacker(true);
        assertTrue(outcome.forgedSent >= 2 && outcome.replaysSent >= 1, "the attacker acted: " + outcome);
        for (int r = 0; r < 2; r++) {
            for (int round = 0; round < ROUNDS; round++) {
                assertArrayEquals(outcome.expected, outcome.results[r][round], "rank " + r + " round " + round);
            }
        }
        final TransportCounters rank1 = outcome.counters[1];
        assertTrue(rank1.forgedFramesDropped() >= outcome.forgedSent + outcome.replaysSent, rank1.toString());
    }

    @Test
    void shouldShowTheForgeryChangesTheResultWhenFrameAuthenticationIsOff() throws Exception {
        // the control experiment: the same attack succeeds without frame authentication, so the test above can fail
        final Outcome outcome = runWithAttacker(false);
        assertTrue(outcome.forgedSent >= 1, outcome.toString());
        assertArrayEquals(outcome.expected, outcome.results[0][0], "rank 0 is not attacked");
        boolean changed = false;
        for (int round = 0; round < ROUNDS; round++) {
            changed |= !Arrays.equals(outcome.expected, outcome.results[1][round]);
        }
        assertTrue(changed, "a forged datagram changed rank 1's result");
        assertEquals(0, outcome.counters[1].forgedFramesDropped());
    }

    @Test
    void shouldKeepEveryResultWhateverAnOnPathFuzzerSendsOrReplaces() throws Exception {
        final int rounds = 60;
        final int n = 10_000;
        final int large = 200_000;
        final float[][] inputs = {RankThreads.values(41, 0, n), RankThreads.values(41, 1, n)};
        final float[] expected = ReferenceCollectives.recursiveDoublingAllReduce(inputs, ReduceOp.SUM);
        final float[][] bigInputs = {RankThreads.values(42, 0, large), RankThreads.values(42, 1, large)};
        final float[] bigExpected = ReferenceCollectives.ringAllReduce(bigInputs, ReduceOp.AVERAGE);
        final TransportCounters[] counters = new TransportCounters[2];
        try (AeronTestJob job = new AeronTestJob(); Relay relay = new Relay(false)) {
            relay.fuzz = new java.util.SplittableRandom(8);
            final List<String> real = LoopbackPorts.udpEndpoints(2);
            final String[] hostPort = real.get(1).split(":");
            relay.target = new InetSocketAddress(hostPort[0], Integer.parseInt(hostPort[1]));
            final List<String> viaRelay = List.of(real.get(0), "127.0.0.1:" + relay.socket.getLocalPort());
            relay.start();
            RankThreads.run(2, 100_000, rank -> {
                try (Communicator c = Communicators.create(AeronTransport.connect(job.udp(rank, rank == 0 ? viaRelay : real)),
                    CONFIG)) {
                    c.barrier();
                    if (rank == 1) {
                        relay.armed = true;
                    }
                    for (int round = 0; round < rounds; round++) {
                        final float[] buf = inputs[rank].clone();
                        c.allReduce(buf, 0, n, ReduceOp.SUM);
                        assertArrayEquals(expected, buf, "rank " + rank + " round " + round);
                        if (round % 20 == 0) {
                            final float[] big = bigInputs[rank].clone();
                            c.allReduce(big, 0, large, ReduceOp.AVERAGE);
                            assertArrayEquals(bigExpected, big, "rank " + rank + " large round " + round);
                        }
                    }
                    c.barrier();
                    counters[rank] = c.counters();
                }
            });
            final int mutated = relay.mutatedExtra.get() + relay.mutatedReplacing.get();
            System.out.println("on-path fuzz over UDP: " + relay.mutatedExtra.get() + " mutated datagrams sent before the genuine"
                + " one, " + relay.mutatedReplacing.get() + " instead of it; rank 1: " + counters[1]);
            assertTrue(mutated >= 500, "mutated datagrams: " + mutated);
            assertTrue(relay.mutatedReplacing.get() >= 100, "replacements: " + relay.mutatedReplacing.get());
            assertTrue(counters[1].forgedFramesDropped() >= mutated / 2, counters[1].toString());
        }
    }

    @Test
    void shouldAuthenticateIpcFramesOnRequestAndCheckTagsInTheDataPath() throws Exception {
        // IPC has no receive endpoint to filter in: the data path checks every tag itself
        final int p = 3;
        final float[][] inputs = new float[p][];
        for (int r = 0; r < p; r++) {
            inputs[r] = RankThreads.values(51, r, 100_000);
        }
        final float[] expected = ReferenceCollectives.ringAllReduce(inputs, ReduceOp.SUM);
        final TransportCounters[] counters = new TransportCounters[p];
        try (AeronTestJob job = new AeronTestJob(); JobMediaDriver driver = JobMediaDriver.launch(job.ipcDirectory(),
            io.moeflow.transport.IdleMode.BACKOFF)) {
            RankThreads.run(p, 90_000, rank -> {
                try (Communicator c = Communicators.create(
                    AeronTransport.connect(job.ipc(rank, p).withFrameAuthentication(true)), CONFIG)) {
                    for (int round = 0; round < 3; round++) {
                        final float[] buf = inputs[rank].clone();
                        c.allReduce(buf, 0, buf.length, ReduceOp.SUM);
                        assertArrayEquals(expected, buf, "rank " + rank + " round " + round);
                    }
                    c.barrier();
                    counters[rank] = c.counters();
                }
            });
        }
        for (int r = 0; r < p; r++) {
            assertTrue(counters[r].framesReceived() > 20, counters[r].toString());
            assertEquals(0, counters[r].forgedFramesDropped() + counters[r].replayedFramesDropped(), counters[r].toString());
        }
    }

    @Test
    void shouldRefuseAPeerWithTheOtherFrameAuthenticationSetting() throws Exception {
        try (AeronTestJob job = new AeronTestJob(); JobMediaDriver driver = JobMediaDriver.launch(job.ipcDirectory(),
            io.moeflow.transport.IdleMode.BACKOFF)) {
            final String[] messages = new String[2];
            RankThreads.run(2, 60_000, rank -> {
                final AeronTransportConfig config = job.ipc(rank, 2).withFrameAuthentication(rank == 0)
                    .withTimeouts(TimeUnit.SECONDS.toNanos(2), 0);
                messages[rank] = org.junit.jupiter.api.Assertions.assertThrows(io.moeflow.transport.TransportException.class,
                    () -> AeronTransport.connect(config)).getMessage();
            });
            for (int r = 0; r < 2; r++) {
                assertTrue(messages[r].contains("no authenticated connection with rank(s) [" + (1 - r) + "]"), messages[r]);
                assertTrue(messages[r].contains("frameAuthentication=" + (r == 0)), messages[r]);
            }
        }
    }

    static final class Outcome {
        float[] expected;
        final float[][][] results = new float[2][ROUNDS][];
        final TransportCounters[] counters = new TransportCounters[2];
        int forgedSent;
        int replaysSent;

        @Override
        public String toString() {
            return "forged=" + forgedSent + " replays=" + replaysSent;
        }
    }

    private static Outcome runWithAttacker(final boolean authenticate) throws Exception {
        final Outcome outcome = new Outcome();
        final float[][] inputs = {RankThreads.values(31, 0, N), RankThreads.values(31, 1, N)};
        outcome.expected = ReferenceCollectives.recursiveDoublingAllReduce(inputs, ReduceOp.SUM);
        try (AeronTestJob job = new AeronTestJob(); Relay relay = new Relay(authenticate)) {
            final List<String> real = LoopbackPorts.udpEndpoints(2);
            final String[] hostPort = real.get(1).split(":");
            relay.target = new InetSocketAddress(hostPort[0], Integer.parseInt(hostPort[1]));
            final List<String> viaRelay = List.of(real.get(0), "127.0.0.1:" + relay.socket.getLocalPort());
            relay.start();
            RankThreads.run(2, 90_000, rank -> {
                final AeronTransportConfig config = job.udp(rank, rank == 0 ? viaRelay : real)
                    .withFrameAuthentication(authenticate);
                try (Communicator c = Communicators.create(AeronTransport.connect(config), CONFIG)) {
                    c.barrier(); // after it, rank 1 has authenticated rank 0's stream: its driver holds the key
                    if (rank == 1) {
                        relay.armed = true;
                    }
                    for (int round = 0; round < ROUNDS; round++) {
                        final float[] buf = inputs[rank].clone();
                        c.allReduce(buf, 0, N, ReduceOp.SUM);
                        outcome.results[rank][round] = buf;
                    }
                    c.barrier();
                    outcome.counters[rank] = c.counters();
                }
            });
            outcome.forgedSent = relay.forged.get();
            outcome.replaysSent = relay.replays.get();
        }
        return outcome;
    }

    /**
     * Forwards rank 0's datagrams to rank 1 and rank 1's answers (status messages, NAKs) back. Data
     * datagrams that carry a MoEFlow data frame are numbered; before forwarding numbers 3 and 9 it
     * sends a forged copy, before number 6 the genuine number 2 rewritten to number 6's position.
     */
    static final class Relay implements AutoCloseable {
        final DatagramSocket socket;
        volatile InetSocketAddress target;
        volatile SocketAddress sender;
        /** Attacks only once set, so that every attack meets a driver that holds the stream's key. */
        volatile boolean armed;
        final AtomicInteger forged = new AtomicInteger();
        final AtomicInteger replays = new AtomicInteger();
        private final Thread thread;
        private volatile boolean running = true;
        private int dataDatagrams;
        private byte[] captured;

        /** Whether to replay too: without authentication a replay of another length would wreck the stream. */
        private final boolean replay;

        Relay(final boolean replay) throws SocketException {
            this.replay = replay;
            socket = new DatagramSocket(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0));
            socket.setSoTimeout(100);
            thread = new Thread(this::loop, "udp-relay");
            thread.setDaemon(true);
        }

        void start() {
            thread.start();
        }

        private void loop() {
            final byte[] bytes = new byte[65536];
            final DatagramPacket packet = new DatagramPacket(bytes, bytes.length);
            while (running) {
                try {
                    packet.setData(bytes);
                    socket.receive(packet);
                    final int length = packet.getLength();
                    if (packet.getSocketAddress().equals(target)) {
                        if (sender != null) {
                            socket.send(new DatagramPacket(bytes, length, sender));
                        }
                        continue;
                    }
                    sender = packet.getSocketAddress();
                    if (armed && carriesDataFrame(bytes, length)) {
                        if (fuzz != null) {
                            if (fuzz(bytes, length)) {
                                continue; // replaced: the genuine datagram is lost, Aeron sends it again
                            }
                        } else {
                            attack(bytes, length);
                        }
                    }
                    socket.send(new DatagramPacket(bytes, length, target));
                } catch (final java.net.SocketTimeoutException e) {
                    // poll the running flag
                } catch (final java.io.IOException e) {
                    if (running) {
                        throw new IllegalStateException(e);
                    }
                }
            }
        }

        /** An Aeron data frame (type 1) whose payload is a MoEFlow data frame. */
        private static boolean carriesDataFrame(final byte[] bytes, final int length) {
            final ByteBuffer b = ByteBuffer.wrap(bytes, 0, length).order(ByteOrder.LITTLE_ENDIAN);
            return length > 64 && b.getInt(0) > 64 && b.getShort(6) == 1 && bytes[32] == Wire.MAGIC
                && bytes[32 + Wire.OFFSET_KIND] == Wire.KIND_DATA;
        }

        /** Set for the fuzz: mutates data datagrams at random instead of the fixed attack. */
        java.util.SplittableRandom fuzz;
        final AtomicInteger mutatedExtra = new AtomicInteger();
        final AtomicInteger mutatedReplacing = new AtomicInteger();

        /**
         * Sends a mutated copy of a data datagram, before the genuine one (half the time) or instead
         * of it (a quarter of the time: then returns true and the genuine one is not forwarded).
         */
        private boolean fuzz(final byte[] bytes, final int length) throws java.io.IOException {
            final int choice = fuzz.nextInt(4);
            if (choice == 0) {
                return false;
            }
            int fakeLength = length;
            final byte[] fake = Arrays.copyOf(bytes, length);
            final int frameStart = DataHeaderFlyweight.HEADER_LENGTH;
            switch (fuzz.nextInt(6)) {
                case 0: // a header field of the MoEFlow frame
                    fake[frameStart + fuzz.nextInt(Wire.HEADER_LENGTH)] ^= (byte) (1 + fuzz.nextInt(255));
                    break;
                case 1: // a payload or trailer byte
                    fake[frameStart + Wire.HEADER_LENGTH + fuzz.nextInt(length - frameStart - Wire.HEADER_LENGTH)] ^= 0x40;
                    break;
                case 2: // a shorter datagram, its frame length rewritten to match
                    fakeLength = frameStart + Wire.HEADER_LENGTH + 4 * fuzz.nextInt((length - frameStart - Wire.HEADER_LENGTH) / 4);
                    ByteBuffer.wrap(fake).order(ByteOrder.LITTLE_ENDIAN).putInt(0, fakeLength);
                    break;
                case 3: // the same frame at another stream position
                    final ByteBuffer b = ByteBuffer.wrap(fake).order(ByteOrder.LITTLE_ENDIAN);
                    b.putInt(DataHeaderFlyweight.TERM_OFFSET_FIELD_OFFSET,
                        Math.max(0, b.getInt(DataHeaderFlyweight.TERM_OFFSET_FIELD_OFFSET) + 32 * (fuzz.nextInt(64) - 32)));
                    break;
                case 4: // another sequence number in Aeron's reserved value
                    ByteBuffer.wrap(fake).order(ByteOrder.LITTLE_ENDIAN).putLong(DataHeaderFlyweight.RESERVED_VALUE_OFFSET,
                        fuzz.nextInt(1000));
                    break;
                default: // a plausible data frame with no tag at all: the trailer replaced by payload bytes
                    ByteBuffer.wrap(fake).order(ByteOrder.LITTLE_ENDIAN).putLong(DataHeaderFlyweight.RESERVED_VALUE_OFFSET, 0);
                    break;
            }
            socket.send(new DatagramPacket(fake, fakeLength, target));
            if (choice == 1) {
                mutatedReplacing.incrementAndGet();
                return true;
            }
            mutatedExtra.incrementAndGet();
            return false;
        }

        private void attack(final byte[] bytes, final int length) throws java.io.IOException {
            dataDatagrams++;
            if (dataDatagrams == 2) {
                captured = Arrays.copyOf(bytes, length);
            }
            if (dataDatagrams == 3 || dataDatagrams == 9) {
                final byte[] fake = Arrays.copyOf(bytes, length);
                for (int i = 32 + Wire.HEADER_LENGTH; i < 32 + Wire.HEADER_LENGTH + 400 && i < length; i++) {
                    fake[i] ^= 0x55; // flip payload bits of the first frame; session, term and offset stay genuine
                }
                socket.send(new DatagramPacket(fake, length, target));
                forged.incrementAndGet();
            }
            if (replay && dataDatagrams == 6 && captured != null) {
                final byte[] replay = captured.clone();
                System.arraycopy(bytes, 8, replay, 8, 4); // term offset
                System.arraycopy(bytes, 20, replay, 20, 4); // term id
                socket.send(new DatagramPacket(replay, replay.length, target));
                replays.incrementAndGet();
            }
        }

        @Override
        public void close() throws InterruptedException {
            running = false;
            thread.join(2000);
            socket.close();
            assertFalse(thread.isAlive(), "relay thread stopped");
        }
    }
}
