/**
 * AdamW with decoupled weight decay, global-norm gradient clipping and learning-rate schedules over
 * flat parameter segments ({@code params[offset..offset+length)}).
 *
 * <p>Entry points: {@link io.moeflow.optimizer.AdamW} (the fast optimizer, with a parallel form and
 * named state for checkpoints), {@link io.moeflow.optimizer.AdamWConfig} (its validated hyperparameters),
 * {@link io.moeflow.optimizer.ParamSegment} (one tensor's range and decay flag) and
 * {@link io.moeflow.optimizer.LrSchedule} (constant, warmup + cosine, or any function of the step, such
 * as the curriculum stage's rate). {@link io.moeflow.optimizer.AdamWReference} is the plain reference the
 * tests hold the fast optimizer to. The module knows nothing of the model: it sees primitive arrays only.
 */
package io.moeflow.optimizer;
