package io.moeflow.launcher;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import io.moeflow.curriculum.BuiltinConfig;
import io.moeflow.curriculum.Dataset;
import io.moeflow.curriculum.Sample;
import picocli.CommandLine.Option;

/** Where the training data comes from (a picocli mixin): the built-in generator or files. */
public final class DataOptions {
    @Option(names = "--data", paramLabel = "FILE", split = ",",
        description = "Training data instead of the built-in generator: .jsonl files ({\"text\":..., \"difficulty\":0.4, "
            + "\"domain\":\"code\"}) or plain text files (one sample per line, difficulty = length percentile).")
    List<Path> files;

    @Option(names = "--skip-bad-samples", defaultValue = "false",
        description = "Skip and count malformed samples instead of stopping at the first one.")
    boolean skipBadSamples;

    @Option(names = "--domains", paramLabel = "NAME", split = ",",
        description = "Built-in domains to generate: ${DEFAULT-VALUE}", defaultValue = "arith,brackets,copy,reverse,pattern,text")
    List<String> domains;

    @Option(names = "--samples-per-domain", paramLabel = "N", defaultValue = "" + BuiltinConfig.DEFAULT_SAMPLES_PER_DOMAIN,
        description = "Built-in samples generated per domain. Default: ${DEFAULT-VALUE}")
    int samplesPerDomain;

    @Option(names = "--data-seed", paramLabel = "SEED", defaultValue = "" + BuiltinConfig.DEFAULT_SEED,
        description = "Seed of the built-in generator. Default: ${DEFAULT-VALUE}")
    long dataSeed;

    /** Samples skipped as malformed by the last {@link #load()} (with --skip-bad-samples). */
    int skipped;

    /** Loads the data: every sample of every file, or the built-in generator's. */
    Dataset load() {
        skipped = 0;
        if (files == null || files.isEmpty()) {
            return Dataset.builtin(new BuiltinConfig(domains, samplesPerDomain, dataSeed));
        }
        if (files.size() == 1) {
            return read(files.get(0));
        }
        final List<Sample> all = new ArrayList<>();
        final StringBuilder source = new StringBuilder();
        for (final Path file : files) {
            final Dataset d = read(file);
            for (int i = 0; i < d.size(); i++) {
                all.add(d.sample(i));
            }
            source.append(source.length() == 0 ? "" : ",").append(file);
        }
        return Dataset.of(source.toString(), all);
    }

    private Dataset read(final Path file) {
        final Dataset d = file.toString().endsWith(".jsonl") ? Dataset.fromJsonl(file, skipBadSamples)
            : Dataset.fromText(file, skipBadSamples);
        skipped += d.skippedCount();
        return d;
    }
}
