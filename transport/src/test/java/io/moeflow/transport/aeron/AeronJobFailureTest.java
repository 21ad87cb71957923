package io.moeflow.transport.aeron;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import io.moeflow.transport.Communicator;
import io.moeflow.transport.Communicators;
import io.moeflow.transport.IdleMode;
import io.moeflow.transport.JobFailureTest;
import io.moeflow.transport.bench.LoopbackPorts;

/**
 * ABORT frames over Aeron: the control lane carries them over IPC and over UDP (where they are
 * authenticated frames like any other), so a rank waiting for a healthy peer fails when two other
 * ranks disagree. Ranks are threads with their own Aeron clients (UDP: their own drivers).
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class AeronJobFailureTest {
    @Test
    void shouldCarryAbortToEveryRankOverIpc() throws Exception {
        try (AeronTestJob job = new AeronTestJob(); JobMediaDriver driver = JobMediaDriver.launch(job.ipcDirectory(), IdleMode.BACKOFF)) {
            final List<Communicator> comms = connectAll(3, rank -> job.ipc(rank, 3));
            try {
                JobFailureTest.assertAbortReachesARankWaitingForAHealthyPeer(comms);
            } finally {
                comms.forEach(Communicator::close);
            }
        }
    }

    @Test
    void shouldCarryAuthenticatedAbortToEveryRankOverUdp() throws Exception {
        try (AeronTestJob job = new AeronTestJob()) {
            final List<String> endpoints = LoopbackPorts.udpEndpoints(3);
            final List<Communicator> comms = connectAll(3, rank -> job.udp(rank, endpoints));
            try {
                JobFailureTest.assertAbortReachesARankWaitingForAHealthyPeer(comms);
            } finally {
                comms.forEach(Communicator::close);
            }
        }
    }

    /** Connects every rank at once (each waits for the others' handshakes). */
    private static List<Communicator> connectAll(final int p, final java.util.function.IntFunction<AeronTransportConfig> config) {
        final Communicator[] comms = new Communicator[p];
        io.moeflow.transport.RankThreads.run(p, 60_000,
            rank -> comms[rank] = Communicators.create(AeronTransport.connect(config.apply(rank)), JobFailureTest.CONFIG));
        return new ArrayList<>(List.of(comms));
    }
}
