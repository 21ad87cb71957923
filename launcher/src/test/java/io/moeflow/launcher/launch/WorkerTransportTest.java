package io.moeflow.launcher.launch;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.InetSocketAddress;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Test;

import io.moeflow.transport.Communicator;
import io.moeflow.transport.CommunicatorConfig;
import io.moeflow.transport.Communicators;
import io.moeflow.transport.JobToken;
import io.moeflow.transport.ReduceOp;
import io.moeflow.transport.rdma.InMemoryFabric;
import io.moeflow.transport.rdma.TransportChoice.Kind;

/** The transport fields of WORKER and READY, through a real protocol line each time. */
class WorkerTransportTest {
    private static Message line(final String verb, final Map<String, String> fields) {
        return Message.parse(new Message(verb, fields).toLine());
    }

    private static Message ready(final String transport, final String endpoints, final String nodes) {
        final Map<String, String> fields = new LinkedHashMap<>(Map.of("gen", "0", "world", "2"));
        if (transport != null) {
            fields.put("transport", transport);
        }
        fields.put("endpoints", endpoints);
        fields.put("nodes", nodes);
        return line("READY", fields);
    }

    @Test
    void shouldCarryKindEndpointsNodesAndRdmaAddressesThroughReady() {
        final WorkerTransport hybrid = new WorkerTransport(Kind.HYBRID, List.of("10.0.0.1:40000", "10.0.0.1:40001", "10.0.0.2:40000",
            "[fe80::1]:40001"), new int[] {0, 0, 1, 1}, List.of());
        final WorkerTransport back = WorkerTransport.ofReady(line("READY", hybrid.readyFields()));
        assertEquals(hybrid, back);
        assertEquals(4, back.worldSize());
        assertEquals(List.of(0, 0, 1, 1), java.util.Arrays.stream(back.nodeOfRank()).boxed().toList());
        assertFalse(hybrid.readyFields().containsKey("rdma"), "no RDMA addresses unless rdma");

        final WorkerTransport rdma = new WorkerTransport(Kind.RDMA, List.of("10.0.0.1:40000", "10.0.0.2:40000"), new int[] {0, 1},
            List.of("10.0.0.1:7471", "10.0.0.2:7471"));
        assertEquals("10.0.0.1:7471,10.0.0.2:7471", rdma.readyFields().get("rdma"));
        assertEquals(rdma, WorkerTransport.ofReady(line("READY", rdma.readyFields())));
    }

    @Test
    void shouldNameTheBadOrMissingReadyField() {
        final IllegalArgumentException missing = assertThrows(IllegalArgumentException.class,
            () -> WorkerTransport.ofReady(ready(null, "a:1,b:2", "0,0")));
        assertTrue(missing.getMessage().contains("READY: field 'transport' is missing"), missing.getMessage());
        final IllegalArgumentException kind = assertThrows(IllegalArgumentException.class,
            () -> WorkerTransport.ofReady(ready("tcp", "a:1,b:2", "0,0")));
        assertTrue(kind.getMessage().contains("transport 'tcp': not one of rdma, udp, ipc, hybrid"), kind.getMessage());
        final IllegalArgumentException nodes = assertThrows(IllegalArgumentException.class,
            () -> WorkerTransport.ofReady(ready("udp", "a:1,b:2", "0,x")));
        assertTrue(nodes.getMessage().contains("field 'nodes' holds 'x'"), nodes.getMessage());
        final IllegalArgumentException count = assertThrows(IllegalArgumentException.class,
            () -> WorkerTransport.ofReady(ready("udp", "a:1,b:2", "0")));
        assertTrue(count.getMessage().contains("2 endpoints for 1 ranks"), count.getMessage());
        final IllegalArgumentException port = assertThrows(IllegalArgumentException.class,
            () -> WorkerTransport.ofReady(ready("udp", "a:1,b:70000", "0,0")));
        assertTrue(port.getMessage().contains("endpoint 'b:70000'"), port.getMessage());
        final IllegalArgumentException noRdma = assertThrows(IllegalArgumentException.class,
            () -> WorkerTransport.ofReady(ready("rdma", "a:1,b:2", "0,1")));
        assertTrue(noRdma.getMessage().contains("rdma with 0 RDMA addresses for 2 ranks"), noRdma.getMessage());
    }

    @Test
    void shouldReadTheEndpointOfAWorkerHello() {
        final Map<String, String> fields = new LinkedHashMap<>(Map.of("gen", "0", "rank", "1"));
        fields.putAll(WorkerTransport.helloFields("10.1.2.3", 40123, "10.1.2.3:7471"));
        final Message hello = line("WORKER", fields);
        assertEquals("10.1.2.3:40123", WorkerTransport.endpointOf(hello));
        assertEquals("10.1.2.3:7471", hello.get("rdma"));
        assertFalse(WorkerTransport.helloFields("h", 1, null).containsKey("rdma"), "no rdma field without an RDMA address");
        assertEquals("[::1]:40000", WorkerTransport.endpointOf(line("WORKER", WorkerTransport.helloFields("::1", 40000, null))));
        final IllegalArgumentException noPort = assertThrows(IllegalArgumentException.class,
            () -> WorkerTransport.endpointOf(line("WORKER", Map.of("addr", "10.1.2.3"))));
        assertTrue(noPort.getMessage().contains("field 'port' is missing"), noPort.getMessage());
        final IllegalArgumentException zero = assertThrows(IllegalArgumentException.class,
            () -> WorkerTransport.endpointOf(line("WORKER", Map.of("addr", "10.1.2.3", "port", "0"))));
        assertTrue(zero.getMessage().contains("endpoint '10.1.2.3:0'"), zero.getMessage());
        assertEquals("fe80::1", WorkerTransport.hostOf("[fe80::1]:7471"));
        assertEquals(7471, WorkerTransport.portOf("[fe80::1]:7471"));
        assertEquals("10.0.0.1", WorkerTransport.hostOf("10.0.0.1:7471"));
    }

    @Test
    void shouldReadTheNodeAddressAndTransportFromTheWorkersEnvironment() {
        final Map<String, String> env = new HashMap<>();
        env.put(WorkerEnv.RUN_ID, "job");
        env.put(WorkerEnv.RANK, "3");
        env.put(WorkerEnv.LOCAL_RANK, "1");
        env.put(WorkerEnv.WORLD_SIZE, "4");
        env.put(WorkerEnv.LOCAL_WORLD_SIZE, "2");
        env.put(WorkerEnv.MASTER_ADDR, "10.0.0.1");
        env.put(WorkerEnv.MASTER_PORT, "29500");
        env.put(WorkerEnv.GENERATION, "0");
        env.put(JoinKey.ENV, "00");
        env.put(WorkerEnv.JOB_DIR, "/dev/shm/moeflow-job");
        env.put(WorkerEnv.AERON_DIR, "/dev/shm/moeflow-job/aeron-g0");
        env.put(WorkerEnv.AGENT_PID, "1");
        env.put(WorkerEnv.JOIN_TIMEOUT_S, "60");
        final IllegalArgumentException incomplete = assertThrows(IllegalArgumentException.class,
            () -> WorkerSession.Environment.of(env));
        assertTrue(incomplete.getMessage().contains("MOEFLOW_NODE_ADDR is not"), incomplete.getMessage());
        env.put(WorkerEnv.NODE_ADDR, "10.0.0.2");
        env.put(WorkerEnv.TRANSPORT, "udp");
        env.put(WorkerEnv.FAILURE_BOUND_MS, "5000");
        env.put(WorkerEnv.UDP_MTU, "8960");
        final WorkerSession.Environment e = WorkerSession.Environment.of(env).orElseThrow();
        assertEquals("10.0.0.2", e.nodeAddr());
        assertEquals("udp", e.transport());
        assertEquals(5_000_000_000L, e.failureBoundNs());
        assertEquals(8960, e.udpMtuBytes());
        assertEquals(3, e.rank());
    }

    @Test
    @org.junit.jupiter.api.Timeout(60)
    void shouldOpenRdmaBetweenTheRanksAtTheAddressesReadyCarries() throws Exception {
        // The hardware verbs (DiSNI) cannot run here: the in-memory fabric stands in for them, fed what READY carries.
        final int size = 3;
        final WorkerTransport sent = new WorkerTransport(Kind.RDMA, List.of("10.0.0.1:40000", "10.0.0.1:40001", "10.0.0.2:40000"),
            new int[] {0, 0, 1}, List.of("10.0.0.1:7471", "10.0.0.1:7472", "[fd00::2]:7471"));
        final WorkerTransport ready = WorkerTransport.ofReady(line("READY", sent.readyFields()));
        final InMemoryFabric fabric = new InMemoryFabric(size, 5);
        final JobToken token = JobToken.generate();
        final List<List<InetSocketAddress>> seen = new CopyOnWriteArrayList<>();
        final List<CompletableFuture<Communicator>> opening = new ArrayList<>();
        for (int r = 0; r < size; r++) {
            final int rank = r;
            opening.add(CompletableFuture.supplyAsync(() -> Communicators.create(WorkerSession.openRdma(ready, rank, "job-g0", token,
                (config, addresses) -> {
                    assertEquals(rank, config.rank());
                    assertEquals(size, config.size());
                    seen.add(addresses);
                    return fabric.verbs(rank);
                }), CommunicatorConfig.DEFAULT)));
        }
        final List<Communicator> comms = new ArrayList<>();
        for (final CompletableFuture<Communicator> f : opening) {
            comms.add(f.get(30, TimeUnit.SECONDS));
        }
        try {
            final List<InetSocketAddress> expected = List.of(new InetSocketAddress("10.0.0.1", 7471), new InetSocketAddress("10.0.0.1", 7472),
                new InetSocketAddress("fd00::2", 7471));
            assertEquals(List.of(expected, expected, expected), seen, "every rank got every rank's RDMA address, by rank");
            final List<CompletableFuture<float[]>> sums = new ArrayList<>();
            for (int r = 0; r < size; r++) {
                final int rank = r;
                sums.add(CompletableFuture.supplyAsync(() -> {
                    final float[] x = {rank, 10 * rank, 1};
                    comms.get(rank).allReduce(x, 0, x.length, ReduceOp.SUM);
                    return x;
                }));
            }
            for (final CompletableFuture<float[]> sum : sums) {
                assertArrayEquals(new float[] {3, 30, 3}, sum.get(30, TimeUnit.SECONDS));
            }
        } finally {
            comms.forEach(Communicator::close);
        }
    }
}
