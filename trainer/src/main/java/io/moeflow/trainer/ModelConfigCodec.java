package io.moeflow.trainer;

import java.util.LinkedHashMap;
import java.util.Map;

import io.moeflow.trainer.model.ModelConfig;
import io.moeflow.trainer.model.RouterScore;

/**
 * Writes a {@link ModelConfig} as one line of {@code name=value} pairs and reads it back: the
 * {@code model_config} attribute of every checkpoint, from which {@code moeflow generate},
 * {@code eval} and {@code inspect} rebuild the model without any other file.
 */
public final class ModelConfigCodec {
    /** The checkpoint attribute that holds the encoded model config. */
    public static final String ATTRIBUTE = "model_config";

    private ModelConfigCodec() {
    }

    public static String encode(final ModelConfig c) {
        return "vocabSize=" + c.vocabSize() + " seqLen=" + c.seqLen() + " channels=" + c.channels() + " layers="
            + c.layers() + " heads=" + c.heads() + " experts=" + c.experts() + " topK=" + c.topK() + " expertHidden="
            + c.expertHidden() + " sharedExperts=" + c.sharedExperts() + " routerScore=" + c.routerScore()
            + " auxLossCoef=" + c.auxLossCoef() + " zLossCoef=" + c.zLossCoef() + " biasBalancing=" + c.biasBalancing()
            + " biasUpdateRate=" + c.biasUpdateRate() + " capacityFactor=" + c.capacityFactor() + " initStd="
            + c.initStd();
    }

    /** @throws IllegalArgumentException naming the missing or malformed field */
    public static ModelConfig decode(final String text) {
        final Map<String, String> f = new LinkedHashMap<>();
        for (final String pair : text.trim().split("\\s+")) {
            final int eq = pair.indexOf('=');
            if (eq <= 0) {
                throw new IllegalArgumentException("model_config: '" + pair + "' is not name=value in: " + text);
            }
            f.put(pair.substring(0, eq), pair.substring(eq + 1));
        }
        try {
            return new ModelConfig(integer(f, "vocabSize"), integer(f, "seqLen"), integer(f, "channels"),
                integer(f, "layers"), integer(f, "heads"), integer(f, "experts"), integer(f, "topK"),
                integer(f, "expertHidden"), integer(f, "sharedExperts"), RouterScore.valueOf(field(f, "routerScore")),
                real(f, "auxLossCoef"), real(f, "zLossCoef"), Boolean.parseBoolean(field(f, "biasBalancing")),
                real(f, "biasUpdateRate"), real(f, "capacityFactor"), real(f, "initStd"));
        } catch (final NumberFormatException e) {
            throw new IllegalArgumentException("model_config: " + e.getMessage() + " in: " + text, e);
        }
    }

    private static String field(final Map<String, String> f, final String name) {
        final String v = f.get(name);
        if (v == null) {
            throw new IllegalArgumentException("model_config lacks " + name + ": " + f);
        }
        return v;
    }

    private static int integer(final Map<String, String> f, final String name) {
        return Integer.parseInt(field(f, name));
    }

    private static double real(final Map<String, String> f, final String name) {
        return Double.parseDouble(field(f, name));
    }
}
