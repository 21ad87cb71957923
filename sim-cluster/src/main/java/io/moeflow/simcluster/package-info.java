/**
 * Simulated multi-node jobs on one host (emulated links and congestion) and scale-out prediction.
 * Not built yet: a later issue fills this module.
 */
package io.moeflow.simcluster;
