/**
 * Block-scaled FP8 (E4M3, E5M2) encoding for compressed collectives: the codec, its Vector API
 * encoder and a plain reference.
 */
package io.moeflow.transport.fp8;
