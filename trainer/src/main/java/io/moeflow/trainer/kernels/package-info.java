/**
 * Numeric kernels of the model: the {@link io.moeflow.trainer.kernels.Ops} contract, plain reference loops
 * ({@link io.moeflow.trainer.kernels.ReferenceOps}) and Vector API kernels ({@link io.moeflow.trainer.kernels.FastOps})
 * held to them by tests.
 */
package io.moeflow.trainer.kernels;
