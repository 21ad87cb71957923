/**
 * The Aeron back-end: {@link io.moeflow.transport.aeron.AeronTransport} over IPC (one media driver
 * per host, {@link io.moeflow.transport.aeron.JobMediaDriver}) or UDP (one driver per process), with
 * an HMAC handshake on every connection.
 */
package io.moeflow.transport.aeron;
