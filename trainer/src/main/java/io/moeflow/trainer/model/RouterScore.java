package io.moeflow.trainer.model;

/**
 * How the router turns its logits into expert scores.
 * <ul>
 *   <li>{@link #SOFTMAX}: scores sum to one over the experts (Switch, GShard, Mixtral, the PyTorch bench model).</li>
 *   <li>{@link #SIGMOID}: independent scores in (0,1) per expert (DeepSeek-V3); the usual choice with
 *       auxiliary-loss-free bias balancing.</li>
 * </ul>
 */
public enum RouterScore {
    SOFTMAX,
    SIGMOID
}
