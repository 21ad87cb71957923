package io.moeflow.checkpoint;

/**
 * What {@code moeflow inspect} prints per tensor.
 *
 * @param tensor the tensor's file, name, dtype and shape
 * @param l2Norm the Euclidean norm of all elements, accumulated in double
 */
public record TensorStats(TensorSpec tensor, double l2Norm) {
}
