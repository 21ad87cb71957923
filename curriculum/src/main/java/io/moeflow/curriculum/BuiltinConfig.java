package io.moeflow.curriculum;

import java.util.HashSet;
import java.util.List;
import java.util.Objects;

/**
 * What the built-in generator makes: which domains, how many samples of each, and the seed.
 *
 * <p>Domains (difficulty = level / (levels - 1), levels drawn uniformly, so each difficulty band has data):
 * <ul>
 *   <li>{@code arith}: {@code 3+4=7}; 8 levels from 1-digit addition to 2-digit-by-1-digit multiplication.</li>
 *   <li>{@code brackets}: {@code f(g[=])}; close every open bracket; 8 levels = nesting depth 1..8.</li>
 *   <li>{@code copy}: {@code copy abc=abc}; 8 levels = word length 1..8.</li>
 *   <li>{@code reverse}: {@code rev abc=cba}; 8 levels = word length 1..8.</li>
 *   <li>{@code pattern}: {@code seq abcab=cab}; continue a periodic string by one period; 6 levels = period 1..6.</li>
 *   <li>{@code text}: short English-like sentences from a small grammar, loss only; 8 levels by word count (3 to 26 words).</li>
 * </ul>
 * Everything after {@code '='} up to the newline is the checkable answer.
 *
 * @param domains          names from {@link #ALL_DOMAINS}, no duplicates, at least one
 * @param samplesPerDomain samples generated for each domain, 1..10,000,000 (duplicates of easy texts are kept)
 * @param seed             generator seed; each domain draws from its own stream, so adding a domain leaves the others unchanged
 */
public record BuiltinConfig(List<String> domains, int samplesPerDomain, long seed) {
    /** Every domain the generator knows, in the order the default uses. */
    public static final List<String> ALL_DOMAINS = List.of("arith", "brackets", "copy", "reverse", "pattern", "text");
    /**
     * Default samples per domain: 5000 gives about 600 per difficulty level (enough that the model sees each
     * easy pattern many times in a few-minute run) and generates in a few tens of milliseconds.
     */
    public static final int DEFAULT_SAMPLES_PER_DOMAIN = 5000;
    /** Default seed (DeepSpeed's data-efficiency default, 1234). */
    public static final long DEFAULT_SEED = 1234L;
    private static final int MAX_SAMPLES_PER_DOMAIN = 10_000_000;

    /** Validates; messages name the field and value. */
    public BuiltinConfig {
        Objects.requireNonNull(domains, "domains");
        domains = List.copyOf(domains);
        if (domains.isEmpty()) {
            throw new IllegalArgumentException("domains=[] must name at least one of " + ALL_DOMAINS);
        }
        for (final String d : domains) {
            if (!ALL_DOMAINS.contains(d)) {
                throw new IllegalArgumentException("domains contains unknown domain=" + d + "; known: " + ALL_DOMAINS);
            }
        }
        if (new HashSet<>(domains).size() != domains.size()) {
            throw new IllegalArgumentException("domains=" + domains + " lists a domain twice");
        }
        if (samplesPerDomain < 1 || samplesPerDomain > MAX_SAMPLES_PER_DOMAIN) {
            throw new IllegalArgumentException("samplesPerDomain=" + samplesPerDomain + " must be in [1, "
                    + MAX_SAMPLES_PER_DOMAIN + "]");
        }
    }

    /** All domains, {@link #DEFAULT_SAMPLES_PER_DOMAIN} each, {@link #DEFAULT_SEED}. */
    public static BuiltinConfig defaults() {
        return new BuiltinConfig(ALL_DOMAINS, DEFAULT_SAMPLES_PER_DOMAIN, DEFAULT_SEED);
    }
}
