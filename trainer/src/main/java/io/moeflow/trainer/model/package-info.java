/**
 * The decoder-only MoE transformer: configuration, parameter layout (one flat slab, PyTorch names), the forward and
 * backward pass of each sublayer, and the deterministic worker pool that splits every kernel over the cores.
 */
package io.moeflow.trainer.model;
