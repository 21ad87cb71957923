package io.moeflow.launcher;

import io.moeflow.trainer.model.ModelConfig;
import io.moeflow.trainer.model.RouterScore;
import picocli.CommandLine.Option;

/** Model size and MoE options (a picocli mixin); defaults come from {@link ModelConfig}. */
public final class ModelOptions {
    @Option(names = "--vocab-size", paramLabel = "V", defaultValue = "" + ModelConfig.DEFAULT_VOCAB_SIZE,
        description = "Vocabulary size; 256 = byte-level tokens. Default: ${DEFAULT-VALUE}")
    int vocabSize;

    @Option(names = "--seq-len", paramLabel = "T", defaultValue = "" + ModelConfig.DEFAULT_SEQ_LEN,
        description = "Context length in tokens. Default: ${DEFAULT-VALUE}")
    int seqLen;

    @Option(names = "--channels", paramLabel = "C", defaultValue = "" + ModelConfig.DEFAULT_CHANNELS,
        description = "Model width (embedding size). Default: ${DEFAULT-VALUE}")
    int channels;

    @Option(names = "--layers", paramLabel = "L", defaultValue = "" + ModelConfig.DEFAULT_LAYERS,
        description = "Transformer blocks. Default: ${DEFAULT-VALUE}")
    int layers;

    @Option(names = "--heads", paramLabel = "H", defaultValue = "" + ModelConfig.DEFAULT_HEADS,
        description = "Attention heads (must divide --channels). Default: ${DEFAULT-VALUE}")
    int heads;

    @Option(names = "--experts", paramLabel = "E", defaultValue = "" + ModelConfig.DEFAULT_EXPERTS,
        description = "Routed experts per MoE layer. Default: ${DEFAULT-VALUE}")
    int experts;

    @Option(names = "--top-k", paramLabel = "K", defaultValue = "" + ModelConfig.DEFAULT_TOP_K,
        description = "Experts each token is routed to. Default: ${DEFAULT-VALUE}")
    int topK;

    @Option(names = "--expert-hidden", paramLabel = "F", defaultValue = "" + ModelConfig.DEFAULT_EXPERT_HIDDEN,
        description = "Hidden width of each expert MLP (C -> F -> C). Default: ${DEFAULT-VALUE}")
    int expertHidden;

    @Option(names = "--shared-experts", paramLabel = "N", defaultValue = "" + ModelConfig.DEFAULT_SHARED_EXPERTS,
        description = "Always-on shared experts per MoE layer. Default: ${DEFAULT-VALUE}")
    int sharedExperts;

    @Option(names = "--router-score", paramLabel = "FN", defaultValue = "SOFTMAX",
        description = "Router score function: ${COMPLETION-CANDIDATES}. Default: ${DEFAULT-VALUE}")
    RouterScore routerScore;

    @Option(names = "--aux-loss-coef", paramLabel = "A", defaultValue = "" + ModelConfig.DEFAULT_AUX_LOSS_COEF,
        description = "Switch/GShard load-balancing loss coefficient (0 = off). Default: ${DEFAULT-VALUE}")
    double auxLossCoef;

    @Option(names = "--z-loss-coef", paramLabel = "Z", defaultValue = "" + ModelConfig.DEFAULT_Z_LOSS_COEF,
        description = "Router z-loss coefficient (0 = off). Default: ${DEFAULT-VALUE}")
    double zLossCoef;

    @Option(names = "--bias-balancing", paramLabel = "BOOL", defaultValue = "false", arity = "0..1",
        description = "DeepSeek-V3 auxiliary-loss-free balancing: a per-expert bias for selection, updated each step. "
            + "Default: ${DEFAULT-VALUE}")
    boolean biasBalancing;

    @Option(names = "--bias-update-rate", paramLabel = "GAMMA", defaultValue = "" + ModelConfig.DEFAULT_BIAS_UPDATE_RATE,
        description = "Bias update speed gamma for --bias-balancing. Default: ${DEFAULT-VALUE}")
    double biasUpdateRate;

    @Option(names = "--capacity-factor", paramLabel = "CF", defaultValue = "0",
        description = "Expert capacity factor; tokens over capacity are dropped. 0 = dropless. Default: ${DEFAULT-VALUE}")
    double capacityFactor;

    @Option(names = "--init-std", paramLabel = "S", defaultValue = "" + ModelConfig.DEFAULT_INIT_STD,
        description = "Standard deviation of the initial weights. Default: ${DEFAULT-VALUE}")
    double initStd;

    ModelConfig toConfig() {
        return new ModelConfig(vocabSize, seqLen, channels, layers, heads, experts, topK, expertHidden, sharedExperts,
            routerScore, auxLossCoef, zLossCoef, biasBalancing, biasUpdateRate, capacityFactor, initStd);
    }
}
