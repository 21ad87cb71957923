/**
 * AdamW with decoupled weight decay, global-norm gradient clipping and learning-rate schedules over
 * flat parameter segments ({@code params[offset..offset+length)}).
 */
package io.moeflow.optimizer;
