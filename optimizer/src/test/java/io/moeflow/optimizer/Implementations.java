package io.moeflow.optimizer;

import java.util.List;
import java.util.function.BiFunction;
import java.util.stream.Stream;

import org.junit.jupiter.api.Named;

/** Both AdamW implementations, for tests that must hold for each. */
final class Implementations {

    private Implementations() {
    }

    /** Builds an optimizer from a config and segments. */
    interface Factory extends BiFunction<AdamWConfig, List<ParamSegment>, AdamWUpdater> {
    }

    /** The fast {@link AdamW} and the plain {@link AdamWReference}, named for test reports. */
    static Stream<Named<Factory>> both() {
        return Stream.of(
                Named.of("AdamW", (Factory) AdamW::new),
                Named.of("AdamWReference", (Factory) AdamWReference::new));
    }
}
