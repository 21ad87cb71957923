/**
 * Ranks, groups, point-to-point messages and collectives (barrier, broadcast, all-reduce,
 * reduce-scatter, all-gather, all-to-all) over Aeron IPC/UDP or in-process threads.
 */
package io.moeflow.transport;
