/**
 * {@code moeflow bench transport}: the nccl-tests style sweep, its baselines (raw Aeron, one-way
 * send/recv, a TCP-socket ring all-reduce) and the worker process management it needs.
 */
package io.moeflow.transport.bench;
