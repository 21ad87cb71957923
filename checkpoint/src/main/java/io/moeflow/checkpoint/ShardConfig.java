package io.moeflow.checkpoint;

import java.util.Map;
import java.util.Objects;

/**
 * How one rank of a job takes part in sharded checkpoints: its rank, the world size, the trainer's cross-rank
 * exchange, and the job properties rank 0 records in the metadata (the trainer's job shape, such as the
 * expert-parallel degree and the expert owners; the module stores them without knowing what they mean).
 *
 * @param rank       this rank, in [0, worldSize)
 * @param worldSize  W, ranks writing parts
 * @param exchange   the all-gather the writer uses as barrier and broadcast
 * @param properties job properties for the metadata: keys without spaces, values on one line
 */
public record ShardConfig(int rank, int worldSize, RankExchange exchange, Map<String, String> properties) {
    /** Validates and copies the properties. */
    public ShardConfig {
        if (worldSize < 1 || rank < 0 || rank >= worldSize) {
            throw new IllegalArgumentException("rank=" + rank + ", worldSize=" + worldSize
                + ": need worldSize >= 1 and 0 <= rank < worldSize");
        }
        Objects.requireNonNull(exchange, "exchange");
        properties = Map.copyOf(properties);
        for (final Map.Entry<String, String> e : properties.entrySet()) {
            if (e.getKey().isEmpty() || e.getKey().matches(".*\\s.*") || e.getValue().contains("\n")
                || e.getValue().isEmpty()) {
                throw new IllegalArgumentException("property '" + e.getKey() + "'='" + e.getValue() + "': keys need "
                    + "no spaces and values one non-empty line");
            }
        }
    }

    /** The values every rank passed, checked to be one per rank. */
    long[] allGather(final long value) {
        final long[] all = exchange.allGather(value);
        if (all == null || all.length != worldSize) {
            throw new IllegalStateException("the rank exchange returned " + (all == null ? "null" : all.length
                + " values") + " for a world of " + worldSize + " ranks");
        }
        return all;
    }
}
