/**
 * The Mixture-of-Experts transformer, its kernels and the training step that composes curriculum,
 * optimizer, checkpoint and transport.
 */
package io.moeflow.trainer;
