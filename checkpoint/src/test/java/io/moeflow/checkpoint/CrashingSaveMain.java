package io.moeflow.checkpoint;

import java.nio.file.Path;

/**
 * A child JVM for {@link KillDuringSaveTest}: saves fixture checkpoints and gets killed by the parent mid-save.
 *
 * <ul>
 * <li>{@code <dir> <STAGE>}: commits step 100, then saves step 200 and stops at {@code STAGE} (prints {@code PAUSED}
 * and sleeps) until the parent kills it. For {@code REPLACING} it commits step 200 first and stops in the second save
 * of step 200.</li>
 * <li>{@code <dir> loop}: saves steps 1, 2, 3, ... asynchronously with keep-last 2, printing {@code COMMITTED <step>}
 * as saves complete, until killed at an arbitrary moment.</li>
 * </ul>
 */
public final class CrashingSaveMain {
    private CrashingSaveMain() {
    }

    public static void main(final String[] args) throws Exception {
        final Path dir = Path.of(args[0]);
        if (args[1].equals("loop")) {
            loop(dir);
            return;
        }
        if (args[1].equals("sharded")) {
            sharded(dir);
            return;
        }
        final SaveStage pauseAt = SaveStage.valueOf(args[1]);
        final FaultInjector pause = (stage, step, path) -> {
            if (stage == pauseAt && step == 200) {
                System.out.println("PAUSED " + stage + " " + path);
                System.out.flush();
                try {
                    Thread.sleep(600_000);
                } catch (final InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
        };
        try (CheckpointWriter w = new CheckpointWriter(CheckpointConfig.defaults(dir).withAsyncSave(false)
            .withKeepLast(1), Fixtures.layout(), Fixtures.METADATA, pause, Fixtures.FIXED_CLOCK)) {
            Fixtures.save(w, 100);
            System.out.println("COMMITTED 100");
            System.out.flush();
            Fixtures.save(w, 200);
            if (pauseAt == SaveStage.REPLACING) {
                // Only a second save of a committed step replaces it (a resumed run with another --save-every).
                System.out.println("COMMITTED 200");
                System.out.flush();
                Fixtures.save(w, 200);
            }
        }
        System.out.println("NOT KILLED");
    }

    /**
     * Two ranks (threads) save sharded checkpoints: step 100, then step 200, where rank 0 stops after every part is
     * written and synced but before it writes the metadata (prints {@code PAUSED BEFORE_METADATA}).
     */
    private static void sharded(final Path dir) throws Exception {
        final ShardedCheckpointTest.ThreadExchange exchange = new ShardedCheckpointTest.ThreadExchange(2);
        final FaultInjector pause = (stage, step, path) -> {
            if (stage == SaveStage.BEFORE_METADATA && step == 200) {
                System.out.println("PAUSED " + stage + " " + path);
                System.out.flush();
                try {
                    Thread.sleep(600_000);
                } catch (final InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
        };
        final Thread[] ranks = new Thread[2];
        for (int r = 0; r < 2; r++) {
            final int rank = r;
            ranks[r] = new Thread(() -> {
                try (CheckpointWriter w = new CheckpointWriter(CheckpointConfig.defaults(dir).withAsyncSave(false),
                    Fixtures.partLayout(rank, 2), Fixtures.METADATA, pause, Fixtures.FIXED_CLOCK,
                    new ShardConfig(rank, 2, exchange.forRank(rank), java.util.Map.of()))) {
                    ShardedCheckpointTest.save(w, 100, rank);
                    if (rank == 0) {
                        System.out.println("COMMITTED 100");
                        System.out.flush();
                    }
                    ShardedCheckpointTest.save(w, 200, rank);
                }
            }, "rank-" + r);
            ranks[r].start();
        }
        for (final Thread t : ranks) {
            t.join();
        }
        System.out.println("NOT KILLED");
    }

    private static void loop(final Path dir) {
        try (CheckpointWriter w = new CheckpointWriter(CheckpointConfig.defaults(dir).withKeepLast(2),
            Fixtures.layout(), Fixtures.METADATA)) {
            for (long step = 1; step < 100_000; step++) {
                Fixtures.save(w, step);
                w.pollCompleted().forEach(r -> System.out.println("COMMITTED " + r.step()));
                System.out.flush();
            }
        }
    }
}
