package io.moeflow.trainer.model;

/**
 * Hyperparameters of the decoder-only MoE transformer. Validated here, once; the {@code DEFAULT_*} constants are
 * {@code moeflow train}'s defaults (its options read them), {@link #benchModel()} is issue 2's benchmark model.
 *
 * @param vocabSize       V, tokens in the vocabulary (256 for bytes)
 * @param seqLen          T, the context length (positions of {@code wpe})
 * @param channels        C, the residual stream width
 * @param layers          L, transformer blocks
 * @param heads           H, attention heads (must divide C)
 * @param experts         E, routed experts per MoE layer
 * @param topK            k, experts chosen per token (1..E)
 * @param expertHidden    F, hidden width of every expert MLP (C -> F -> C)
 * @param sharedExperts   S, always-on experts (weight 1) beside the routed ones; 0 for none
 * @param routerScore     softmax or sigmoid router scores
 * @param auxLossCoef     Switch/GShard load-balancing loss coefficient; 0 disables it
 * @param zLossCoef       ST-MoE router z-loss coefficient; 0 disables it
 * @param biasBalancing   DeepSeek-V3 auxiliary-loss-free balancing (selection bias, updated by the sign rule)
 * @param biasUpdateRate  gamma of the sign rule (DeepSeek-V3 and Megatron use 1e-3)
 * @param capacityFactor  0 = dropless (every routed token is processed); otherwise capacity per expert is
 *                        ceil(k * tokens / E * capacityFactor) and overflow is dropped
 * @param initStd         standard deviation of the normal weight init (GPT-2: 0.02)
 */
public record ModelConfig(int vocabSize, int seqLen, int channels, int layers, int heads, int experts, int topK,
    int expertHidden, int sharedExperts, RouterScore routerScore, double auxLossCoef, double zLossCoef,
    boolean biasBalancing, double biasUpdateRate, double capacityFactor, double initStd) {
    /**
     * Validates every field with a {@code name=value} message.
     */
    public ModelConfig {
        positive("vocabSize", vocabSize);
        positive("seqLen", seqLen);
        positive("channels", channels);
        positive("layers", layers);
        positive("heads", heads);
        positive("experts", experts);
        positive("topK", topK);
        positive("expertHidden", expertHidden);
        if (channels % heads != 0) {
            throw new IllegalArgumentException("heads=" + heads + " must divide channels=" + channels);
        }
        if (topK > experts) {
            throw new IllegalArgumentException("topK=" + topK + " must be <= experts=" + experts);
        }
        if (sharedExperts < 0) {
            throw new IllegalArgumentException("sharedExperts=" + sharedExperts + " must be >= 0");
        }
        if (routerScore == null) {
            throw new IllegalArgumentException("routerScore=null: choose SOFTMAX or SIGMOID");
        }
        nonNegative("auxLossCoef", auxLossCoef);
        nonNegative("zLossCoef", zLossCoef);
        nonNegative("biasUpdateRate", biasUpdateRate);
        nonNegative("capacityFactor", capacityFactor);
        if (!(initStd > 0) || !Double.isFinite(initStd)) {
            throw new IllegalArgumentException("initStd=" + initStd + " must be > 0 and finite");
        }
        final long params = parameterCount(vocabSize, seqLen, channels, layers, experts, expertHidden, sharedExperts);
        if (params > Integer.MAX_VALUE - 16) {
            throw new IllegalArgumentException("parameterCount=" + params + " exceeds one float[] slab (max " +
                (Integer.MAX_VALUE - 16) + "): reduce channels, experts or expertHidden");
        }
    }

    /** Byte-level tokens: any UTF-8 text, no tokenizer to ship. */
    public static final int DEFAULT_VOCAB_SIZE = 256;
    /** The built-in samples are tens of bytes long: 64 bytes of context holds a few of them. */
    public static final int DEFAULT_SEQ_LEN = 64;
    /** Width and depth of the default model: small enough to train in minutes on two cores. */
    public static final int DEFAULT_CHANNELS = 128;
    public static final int DEFAULT_LAYERS = 2;
    public static final int DEFAULT_HEADS = 4;
    /** 8 experts, top-2: each token uses a quarter of the expert parameters. */
    public static final int DEFAULT_EXPERTS = 8;
    public static final int DEFAULT_TOP_K = 2;
    /** Expert MLP hidden width F = 2C, as in the bench model. */
    public static final int DEFAULT_EXPERT_HIDDEN = 256;
    public static final int DEFAULT_SHARED_EXPERTS = 0;
    /** Switch Transformer's coefficient (moe-anchors.md 4.1). */
    public static final double DEFAULT_AUX_LOSS_COEF = 0.01;
    /** ST-MoE's coefficient (moe-anchors.md 4.3). */
    public static final double DEFAULT_Z_LOSS_COEF = 0.001;
    /** DeepSeek-V3's bias update speed gamma (moe-anchors.md 4.4). */
    public static final double DEFAULT_BIAS_UPDATE_RATE = 0.001;
    /** GPT-2's initialisation standard deviation. */
    public static final double DEFAULT_INIT_STD = 0.02;

    /**
     * The benchmark model of issue 2, also the PyTorch reference in {@code torch_moe_reference.py}: V=256, T=128,
     * C=128, L=2, H=4, E=16, top-2, F=256, no shared expert, softmax router, aux loss 0.01 (the Switch Transformer
     * coefficient), no z-loss, dropless, init std 0.02 (GPT-2).
     *
     * @return the bench model configuration
     */
    public static ModelConfig benchModel() {
        return new ModelConfig(256, 128, 128, 2, 4, 16, 2, 256, 0, RouterScore.SOFTMAX, 0.01, 0.0, false, 1e-3, 0.0,
            0.02);
    }

    /**
     * @return head dimension C / H
     */
    public int headDim() {
        return channels / heads;
    }

    /**
     * @return parameters of one expert MLP: w1 [F,C] + b1 [F] + w2 [C,F] + b2 [C]
     */
    public long expertParameterCount() {
        return 2L * channels * expertHidden + expertHidden + channels;
    }

    /**
     * Total trainable parameters (the expert-bias buffers are not parameters):
     * {@code V*C + T*C + L*(4C + 3C*C + 3C + C*C + C + E*C + (E+S)*(2*C*F + F + C)) + 2C + V*C}.
     *
     * @return the size of the parameter slab
     */
    public long parameterCount() {
        return parameterCount(vocabSize, seqLen, channels, layers, experts, expertHidden, sharedExperts);
    }

    /**
     * Parameters that touch one token: everything except the experts it is not routed to, i.e.
     * {@code parameterCount() - L * (E - k) * expertParameterCount()} (embedding tables counted whole, as usual).
     *
     * @return active parameters per token
     */
    public long activeParametersPerToken() {
        return parameterCount() - (long) layers * (experts - topK) * expertParameterCount();
    }

    /**
     * Training FLOPs per token, PaLM convention: {@code 6 * N_matmul + 12 * L * T * C}, where N_matmul counts the
     * weight matrices one token multiplies (qkv, proj, router, k + S experts, head; not the embedding tables) and the
     * attention term counts the full T x T window, as the masked PyTorch reference computes it. The bench model gives
     * 2.97 MFLOP per token, 6.09 GFLOP per step of 2048 tokens.
     *
     * @return FLOPs per token for forward plus backward
     */
    public double flopsPerToken() {
        final double c = channels;
        final double perLayer = 3 * c * c + c * c + experts * c + (topK + sharedExperts) * 2.0 * c * expertHidden;
        final double matmul = layers * perLayer + c * vocabSize;
        return 6 * matmul + 12.0 * layers * seqLen * c;
    }

    private static long parameterCount(final int v, final int t, final int c, final int l, final int e, final int f,
        final int s) {
        final long expert = 2L * c * f + f + c;
        final long block = 4L * c + 3L * c * c + 3L * c + (long) c * c + c + (long) e * c + (long) (e + s) * expert;
        return (long) v * c + (long) t * c + l * block + 2L * c + (long) v * c;
    }

    private static void positive(final String name, final int value) {
        if (value <= 0) {
            throw new IllegalArgumentException(name + "=" + value + " must be > 0");
        }
    }

    private static void nonNegative(final String name, final double value) {
        if (!(value >= 0) || !Double.isFinite(value)) {
            throw new IllegalArgumentException(name + "=" + value + " must be >= 0 and finite");
        }
    }
}
