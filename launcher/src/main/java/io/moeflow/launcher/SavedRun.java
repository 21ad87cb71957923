package io.moeflow.launcher;

import java.io.IOException;
import java.io.StringReader;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.List;
import java.util.Optional;
import java.util.Properties;
import java.util.stream.Stream;

import io.moeflow.checkpoint.CheckpointFormat;
import io.moeflow.checkpoint.CheckpointReader;
import io.moeflow.checkpoint.CheckpointStore;
import io.moeflow.checkpoint.Resolution;
import io.moeflow.trainer.ModelConfigCodec;
import io.moeflow.trainer.model.ModelConfig;
import picocli.CommandLine;

/**
 * Finds the checkpoint that {@code eval}, {@code generate} and {@code inspect} work on, and reads
 * what the run recorded in it: the model config and the training options.
 */
final class SavedRun {
    private SavedRun() {
    }

    /**
     * The checkpoint to use: {@code given} may be a checkpoint ({@code .../step-N}), a run's
     * {@code checkpoints} directory or a run directory (their newest valid checkpoint); without it,
     * the newest checkpoint of the most recently trained run under {@code runsDir}. Every checksum of the
     * checkpoint returned has been verified ({@link CheckpointStore}), so callers only open and read it.
     */
    static Resolution find(final Path given, final Path runsDir) {
        if (given != null) {
            if (!Files.isDirectory(given)) {
                throw new IllegalArgumentException("checkpoint " + given + ": no such directory; give a run directory"
                    + " (runs/<name>) or one of its checkpoints (runs/<name>/checkpoints/step-N)");
            }
            if (Files.exists(given.resolve(CheckpointFormat.MANIFEST))
                || Files.exists(given.resolve(CheckpointFormat.SHARDED_METADATA))) {
                return new CheckpointStore(given.toAbsolutePath().getParent()).resolve(given);
            }
            final Path checkpoints = Files.isDirectory(given.resolve("checkpoints")) ? given.resolve("checkpoints") : given;
            return new CheckpointStore(checkpoints).resolveAuto().orElseThrow(() -> new IllegalArgumentException(
                "checkpoint " + given + ": no checkpoint in it; give a run directory or runs/<name>/checkpoints/step-N"));
        }
        return newestRun(runsDir).flatMap(run -> new CheckpointStore(run.resolve("checkpoints")).resolveAuto())
            .orElseThrow(() -> new IllegalArgumentException("no checkpoint found under " + runsDir.toAbsolutePath()
                + "; train a model first (./moeflow train) or pass --checkpoint DIR"));
    }

    /** The run under {@code runsDir} whose checkpoints changed last. */
    private static Optional<Path> newestRun(final Path runsDir) {
        if (!Files.isDirectory(runsDir)) {
            return Optional.empty();
        }
        try (Stream<Path> runs = Files.list(runsDir)) {
            return runs.filter(r -> Files.isDirectory(r.resolve("checkpoints")))
                .max(Comparator.comparingLong(r -> modified(r.resolve("checkpoints"))));
        } catch (final IOException e) {
            throw new UncheckedIOException("cannot list " + runsDir + ": " + e.getMessage(), e);
        }
    }

    private static long modified(final Path dir) {
        try (Stream<Path> children = Files.list(dir)) {
            long newest = Files.getLastModifiedTime(dir).toMillis();
            for (final Path c : (Iterable<Path>) children::iterator) {
                newest = Math.max(newest, Files.getLastModifiedTime(c).toMillis());
            }
            return newest;
        } catch (final IOException e) {
            return Long.MIN_VALUE;
        }
    }

    /** The model the checkpoint was written for. */
    static ModelConfig modelConfig(final CheckpointReader reader) {
        final String encoded = reader.metadata().extra().get(ModelConfigCodec.ATTRIBUTE);
        if (encoded == null) {
            throw new IllegalArgumentException(reader.directory() + " has no " + ModelConfigCodec.ATTRIBUTE
                + " attribute: it was not written by moeflow train");
        }
        return ModelConfigCodec.decode(encoded);
    }

    /** The train command as the run was configured (its saved options), e.g. to rebuild its dataset. */
    static TrainCommand trainOptions(final CheckpointReader reader) {
        final Properties saved = new Properties();
        try {
            saved.load(new StringReader(reader.config()));
        } catch (final IOException e) {
            throw new UncheckedIOException(e);
        }
        final TrainCommand train = new TrainCommand();
        final CommandLine cli = new CommandLine(train);
        cli.setDefaultValueProvider(new CommandLine.PropertiesDefaultProvider(saved));
        cli.parseArgs();
        return train;
    }

    /** The checkpoint's directory and step, with the warnings met while resolving it, for messages. */
    static String describe(final Resolution r) {
        final List<String> w = r.warnings();
        return r.directory() + " (step " + r.step() + ")" + (w.isEmpty() ? "" : "\n  warning: " + String.join("\n  warning: ", w));
    }
}
