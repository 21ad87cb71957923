package io.moeflow.checkpoint;

/**
 * What a save cost the caller, returned by {@link CheckpointWriter#commit}; the trainer puts {@link #stallNs} in its
 * metrics as the step time lost to checkpointing.
 *
 * @param step    the step being saved
 * @param waitNs  time spent in {@code begin} waiting for the previous save to finish
 * @param stallNs total caller time from entering {@code begin} to returning from {@code commit}: the wait, the copy
 *                into staging buffers and, for a synchronous save, the whole write
 * @param async   whether the write continues in the background
 */
public record SaveTicket(long step, long waitNs, long stallNs, boolean async) {
}
