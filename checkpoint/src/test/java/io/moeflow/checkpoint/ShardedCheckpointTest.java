package io.moeflow.checkpoint;

import static io.moeflow.checkpoint.CheckpointFile.STATE;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.BrokenBarrierException;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.IntFunction;
import java.util.stream.Stream;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** Sharded checkpoints with the ranks of a job as threads, the exchange an in-memory all-gather. */
@Timeout(120)
class ShardedCheckpointTest {
    private static final int WORLD = 4;

    @TempDir
    Path dir;

    /** An all-gather over threads: every call meets the other ranks' calls, bounded by a timeout. */
    static final class ThreadExchange {
        private final long[] slots;
        private final CyclicBarrier barrier;

        ThreadExchange(final int worldSize) {
            slots = new long[worldSize];
            barrier = new CyclicBarrier(worldSize);
        }

        RankExchange forRank(final int rank) {
            return value -> {
                slots[rank] = value;
                await();
                final long[] all = slots.clone();
                await(); // nobody overwrites a slot before every rank has read them all
                return all;
            };
        }

        private void await() {
            try {
                barrier.await(30, TimeUnit.SECONDS);
            } catch (final InterruptedException | BrokenBarrierException | TimeoutException e) {
                throw new IllegalStateException("a rank did not arrive: " + e, e);
            }
        }
    }

    /** Runs {@code body(rank)} on one thread per rank; returns the results (or the exceptions) in rank order. */
    static List<Object> onRanks(final int worldSize, final IntFunction<Object> body) throws Exception {
        final ExecutorService pool = Executors.newFixedThreadPool(worldSize);
        try {
            final List<Future<Object>> futures = new ArrayList<>();
            for (int r = 0; r < worldSize; r++) {
                final int rank = r;
                futures.add(pool.submit(() -> {
                    try {
                        return body.apply(rank);
                    } catch (final RuntimeException e) {
                        return e;
                    }
                }));
            }
            final List<Object> out = new ArrayList<>();
            for (final Future<Object> f : futures) {
                try {
                    out.add(f.get(90, TimeUnit.SECONDS));
                } catch (final ExecutionException e) {
                    out.add(e.getCause());
                }
            }
            return out;
        } finally {
            pool.shutdownNow();
        }
    }

    private static ShardConfig shard(final ThreadExchange exchange, final int rank, final int worldSize) {
        return new ShardConfig(rank, worldSize, exchange.forRank(rank), Map.of("expert_parallel", "2",
            "expert_owners", "0:0 1:1 2:0 3:1"));
    }

    private CheckpointWriter writer(final ThreadExchange exchange, final int rank, final int worldSize,
        final boolean async, final FaultInjector faults) {
        return new CheckpointWriter(CheckpointConfig.defaults(dir).withKeepLast(0).withAsyncSave(async),
            Fixtures.partLayout(rank, worldSize), Fixtures.METADATA, faults, Fixtures.FIXED_CLOCK,
            shard(exchange, rank, worldSize));
    }

    static void save(final CheckpointWriter w, final long step, final int rank) {
        final CheckpointWriter.Snapshot s = w.begin(step);
        Fixtures.fill(s);
        s.int64(STATE, CheckpointFormat.RANK_STATE_PREFIX + rank + "/pid", 1000 + rank);
        w.commit(s);
    }

    /** Every rank saves steps 100 (synchronously) and 200 (in the background), and closes. */
    private void saveTwoSteps(final int worldSize) throws Exception {
        final ThreadExchange exchange = new ThreadExchange(worldSize);
        for (final Object result : onRanks(worldSize, rank -> {
            try (CheckpointWriter w = writer(exchange, rank, worldSize, false, FaultInjector.NONE)) {
                save(w, 100, rank);
            }
            try (CheckpointWriter w = writer(exchange, rank, worldSize, true, FaultInjector.NONE)) {
                save(w, 200, rank);
                return w.commitPending();
            }
        })) {
            assertTrue(result instanceof List<?> l && l.size() == 1, "each rank reports the commit: " + result);
        }
    }

    private List<String> names(final Path path) throws IOException {
        try (Stream<Path> children = Files.list(path)) {
            return children.map(p -> p.getFileName().toString()).filter(n -> !n.startsWith(CheckpointFormat.WRITER_LOCK))
                .sorted().toList();
        }
    }

    @Test
    void shouldWriteOnePartPerRankAndMetadataLastReadableByNameLikeOneCheckpoint() throws Exception {
        saveTwoSteps(WORLD);
        assertEquals(List.of("latest", "step-00000100", "step-00000200"), names(dir));
        final Path step200 = dir.resolve("step-00000200");
        assertEquals(List.of("metadata.txt", "rank-00000", "rank-00001", "rank-00002", "rank-00003"), names(step200));
        assertEquals(List.of("manifest.txt", "model.h5", "state.h5"), names(step200.resolve("rank-00002")));

        try (CheckpointReader r = CheckpointReader.open(step200)) {
            r.verify();
            assertEquals(r.dataBytes(), r.dataBytesRead(), "verify streams every part's data once");
            // Read by name, as one process would: every tensor, bit for bit, whichever rank wrote it.
            Fixtures.assertHoldsStep(r, 200);
            final ShardedMetadata m = r.shardedMetadata().orElseThrow();
            assertEquals(WORLD, m.worldSize());
            assertEquals("2", m.properties().get("expert_parallel"));
            assertEquals("0:0 1:1 2:0 3:1", m.properties().get("expert_owners"));
            assertEquals(Fixtures.layout().size() + WORLD, m.tensors().size(), "each tensor written once");
            assertEquals(2, m.tensors().get("state.h5 ranks/2/pid"));
            assertEquals(1002, r.int64(STATE, "ranks/2/pid"));
            assertEquals("model.layers=2\nmodel.channels=8\n", r.config());
        }
        assertEquals(200, new CheckpointStore(dir).resolveAuto().orElseThrow().step());
    }

    @Test
    void shouldNeverChooseACheckpointWithoutMetadata() throws Exception {
        saveTwoSteps(2);
        // What a crash after the parts but before rank 0's metadata would leave, had it been committed by hand.
        final Path incomplete = dir.resolve("step-00000300");
        Files.createDirectories(incomplete);
        for (final String part : List.of("rank-00000", "rank-00001")) {
            Files.move(copyOf(dir.resolve("step-00000200").resolve(part)), incomplete.resolve(part));
        }
        final CheckpointException e = assertThrows(CheckpointException.class, () -> CheckpointReader.open(incomplete));
        assertTrue(e.getMessage().contains("incomplete sharded checkpoint") && e.getMessage().contains("metadata.txt"),
            e.getMessage());
        final Resolution auto = new CheckpointStore(dir).resolveAuto().orElseThrow();
        assertEquals(200, auto.step());
        assertTrue(auto.warnings().get(0).contains("step-00000300"), auto.warnings().toString());
    }

    private Path copyOf(final Path part) throws IOException {
        final Path copy = dir.resolve("copy-" + part.getFileName());
        Files.createDirectories(copy);
        try (Stream<Path> files = Files.list(part)) {
            for (final Path f : (Iterable<Path>) files::iterator) {
                // The part names step 200; the reader rejects the directory before it reads a part: no metadata.
                Files.copy(f, copy.resolve(f.getFileName()));
            }
        }
        return copy;
    }

    @Test
    void shouldCommitNothingWhenOneRankFailsToWriteItsPart() throws Exception {
        final ThreadExchange exchange = new ThreadExchange(WORLD);
        final FaultInjector rank2Fails = (stage, step, path) -> {
            if (stage == SaveStage.BEFORE_FSYNC && step == 200 && path.getFileName().toString().equals("rank-00002")) {
                throw new IOException("injected: rank 2's disk is full");
            }
        };
        final List<Object> results = onRanks(WORLD, rank -> {
            try (CheckpointWriter w = writer(exchange, rank, WORLD, false, rank2Fails)) {
                save(w, 100, rank);
                save(w, 200, rank);
                return "saved";
            }
        });
        for (int rank = 0; rank < WORLD; rank++) {
            final Object r = results.get(rank);
            assertTrue(r instanceof CheckpointException, "rank " + rank + ": " + r);
            final String message = ((CheckpointException) r).getMessage();
            assertTrue(rank == 2 ? message.contains("rank 2's disk is full")
                : message.contains("failed on rank 2") && message.contains("previous checkpoint is intact"), message);
        }
        assertEquals(List.of("latest", "step-00000100"), names(dir), "no step 200, no temporary directory left");
        try (CheckpointReader r = CheckpointReader.open(dir.resolve("step-00000100"))) {
            Fixtures.assertHoldsStep(r, 100);
        }
    }

    @Test
    void shouldLeaveThePreviousCheckpointWhenRankZeroFailsBeforeTheMetadata() throws Exception {
        final ThreadExchange exchange = new ThreadExchange(2);
        final FaultInjector noMetadata = (stage, step, path) -> {
            if (stage == SaveStage.BEFORE_METADATA && step == 200) {
                throw new IOException("injected: rank 0 dies before the metadata");
            }
        };
        final List<Object> results = onRanks(2, rank -> {
            try (CheckpointWriter w = writer(exchange, rank, 2, true, noMetadata)) {
                save(w, 100, rank);
                w.commitPending();
                save(w, 200, rank);
                return w.commitPending();
            }
        });
        assertTrue(results.get(0) instanceof CheckpointException e0 && e0.getMessage().contains("before the metadata"),
            String.valueOf(results.get(0)));
        assertTrue(results.get(1) instanceof CheckpointException e1 && e1.getMessage().contains("rank 0 could not "
            + "commit"), String.valueOf(results.get(1)));
        assertEquals(List.of("latest", "step-00000100"), names(dir));
        assertEquals(100, new CheckpointStore(dir).resolveAuto().orElseThrow().step());
    }

    @Test
    void shouldLetRankZeroChooseTheStepSoEveryRankFallsBackTogether() throws Exception {
        saveTwoSteps(2);
        // Damage a tensor that only rank 1 reads when it resumes.
        CheckpointValidationTest.flipDataBit(dir.resolve("step-00000200/rank-00001/state.h5"),
            "optimizer/exp_avg/wte.weight");
        final ThreadExchange exchange = new ThreadExchange(3); // resumed on 3 ranks: any world size reads it
        final List<Object> results = onRanks(3, rank -> new CheckpointStore(dir).loadAuto(reader -> {
            final float[] dst = new float[Fixtures.PARAMS];
            reader.readFloat32(CheckpointFile.MODEL, "lnf.weight", dst, 0);
            if (rank == 1) {
                reader.readFloat32(STATE, "optimizer/exp_avg/wte.weight", dst, 0);
            }
        }, new ShardConfig(rank, 3, exchange.forRank(rank), Map.of())));
        for (int rank = 0; rank < 3; rank++) {
            final Object r = results.get(rank);
            assertTrue(r instanceof Optional<?> o && o.isPresent(), "rank " + rank + ": " + r);
            final Resolution resolution = (Resolution) ((Optional<?>) r).get();
            assertEquals(100, resolution.step(), "rank " + rank + " resumes where every rank can");
            assertEquals(1, resolution.warnings().size(), resolution.warnings().toString());
        }
        assertTrue(((Resolution) ((Optional<?>) results.get(1)).get()).warnings().get(0).contains("exp_avg/wte.weight"));
        assertFalse(Files.exists(dir.resolve("step-00000300")));
    }

    @Test
    void shouldFindNothingOnEveryRankInAFreshRun() throws Exception {
        final ThreadExchange exchange = new ThreadExchange(2);
        final List<Object> results = onRanks(2, rank -> new CheckpointStore(dir.resolve("fresh")).loadAuto(reader -> {
            throw new AssertionError("nothing to load");
        }, new ShardConfig(rank, 2, exchange.forRank(rank), Map.of())));
        assertEquals(List.of(Optional.empty(), Optional.empty()), results);
    }
}
