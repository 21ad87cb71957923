package io.moeflow.transport.aeron;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.security.MessageDigest;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import io.moeflow.transport.Communicator;
import io.moeflow.transport.CommunicatorConfig;
import io.moeflow.transport.Communicators;
import io.moeflow.transport.JobToken;
import io.moeflow.transport.PeerFailureException;
import io.moeflow.transport.ReduceOp;
import io.moeflow.transport.TransportException;

/**
 * A worker JVM for the multi-process tests (test sources only; the launcher is the production main).
 * Arguments are {@code key=value}: mode (ipc, udp, hybrid), rank, size, dir (hybrid: the node's), endpoints,
 * own and nodes (hybrid: this rank's own driver directory, node index by rank), job, token, role,
 * result, stop, opTimeoutS (operation timeout, default 3).
 * Exit codes: 0 done, 3 a peer failed, 4 could not connect, 1 anything else.
 */
public final class CollectiveWorkerMain {
    private CollectiveWorkerMain() {
    }

    public static void main(final String[] args) throws Exception {
        io.moeflow.transport.bench.WorkerProcesses.exitWhenParentDies();
        final Map<String, String> a = new HashMap<>();
        for (final String arg : args) {
            final int eq = arg.indexOf('=');
            a.put(arg.substring(0, eq), arg.substring(eq + 1));
        }
        final int rank = Integer.parseInt(a.get("rank"));
        final int size = Integer.parseInt(a.get("size"));
        final Path result = Paths.get(a.get("result"));
        final JobToken token = JobToken.readFrom(Paths.get(a.get("token")));
        AeronTransportConfig config = switch (a.get("mode")) {
            case "udp" -> AeronTransportConfig.udp(rank, size, a.get("dir"), List.of(a.get("endpoints").split(",")), a.get("job"), token);
            case "hybrid" -> AeronTransportConfig.hybrid(rank, size, a.get("dir"), a.get("own"), List.of(a.get("endpoints").split(",")),
                Arrays.stream(a.get("nodes").split(",")).mapToInt(Integer::parseInt).toArray(), a.get("job"), token);
            default -> AeronTransportConfig.ipc(rank, size, a.get("dir"), a.get("job"), token);
        };
        config = config.withTermAndMtu(1 << 20, config.mtuBytes())
            .withTimeouts(TimeUnit.SECONDS.toNanos("impostor".equals(a.get("role")) ? 3 : 30), TimeUnit.SECONDS.toNanos(3));
        final CommunicatorConfig commConfig = CommunicatorConfig.DEFAULT.withOpTimeoutNs(
            TimeUnit.SECONDS.toNanos(Long.parseLong(a.getOrDefault("opTimeoutS", "3"))));
        final Communicator c;
        try {
            c = Communicators.create(AeronTransport.connect(config), commConfig);
        } catch (final TransportException e) {
            Files.writeString(result, "REFUSED " + e.getMessage());
            System.exit(4);
            return;
        }
        try {
            switch (a.get("role")) {
                case "collectives":
                    Files.writeString(result, sha256(AeronCollectivesTest.script(c)) + "\n" + c.counters());
                    break;
                case "loop":
                    loopUntilFailure(c, result);
                    break;
                case "counted":
                    loopUntilStopFile(c, Paths.get(a.get("stop")));
                    Files.writeString(result, "handshakesRejected=" + c.counters().handshakesRejected());
                    break;
                default:
                    throw new IllegalArgumentException("role=" + a.get("role"));
            }
            c.close();
        } catch (final PeerFailureException e) {
            final long failedAtMs = System.currentTimeMillis();
            // the next operation must fail at once with the same rank and reason
            String next = "NEXT none";
            try {
                c.barrier();
            } catch (final PeerFailureException later) {
                next = "NEXT peer=" + later.peer() + " reason=" + later.reason();
            }
            Files.writeString(result, "FAILED peer=" + e.peer() + " reason=" + e.reason() + " atMs=" + failedAtMs + "\n" + next
                + "\n" + e.getMessage());
            System.exit(3);
        }
        System.exit(0);
    }

    /**
     * A training-like loop until a peer fails: a bulk all-reduce in flight (async, as a gradient
     * bucket) while a small urgent all-reduce runs, then a blocking ring all-reduce.
     */
    private static void loopUntilFailure(final Communicator c, final Path result) throws Exception {
        final float[] bucket = new float[100_000];
        final float[] small = new float[4];
        final float[] buf = new float[100_000];
        for (int i = 0; ; i++) {
            Arrays.fill(bucket, 1f);
            final io.moeflow.transport.CollectiveHandle h = c.allReduceAsync(bucket, 0, bucket.length, ReduceOp.SUM, null);
            Arrays.fill(small, 1f);
            c.urgent().allReduce(small, 0, small.length, ReduceOp.SUM);
            h.await(TimeUnit.SECONDS.toNanos(120));
            Arrays.fill(buf, 1f);
            c.allReduce(buf, 0, buf.length, ReduceOp.SUM);
            if (buf[0] != c.size() || bucket[0] != c.size() || small[0] != c.size()) {
                throw new IllegalStateException("iteration " + i + ": wrong sums " + buf[0] + " " + bucket[0] + " " + small[0]);
            }
            if (i == 0) {
                Files.writeString(result, "RUNNING");
            }
        }
    }

    private static void loopUntilStopFile(final Communicator c, final Path stop) throws Exception {
        final int[] goOn = {1};
        for (int i = 0; goOn[0] == 1; i++) {
            final float[] buf = {c.rank() + i};
            c.allReduce(buf, 0, 1, ReduceOp.SUM);
            if (buf[0] != 2f * i + 1f) {
                throw new IllegalStateException("iteration " + i + ": got " + buf[0]);
            }
            Thread.sleep(5);
            goOn[0] = Files.exists(stop) && i > 10 ? 0 : 1;
            c.broadcast(goOn, 0, 1, 0);
        }
    }

    /** Hex SHA-256 of the floats' bits, to compare results across processes. */
    static String sha256(final float[] values) throws Exception {
        final ByteBuffer bytes = ByteBuffer.allocate(4 * values.length).order(ByteOrder.LITTLE_ENDIAN);
        bytes.asFloatBuffer().put(values);
        return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes.array()));
    }

    static String read(final Path file) throws Exception {
        return Files.exists(file) ? Files.readString(file, StandardCharsets.UTF_8) : "(no result file)";
    }
}
