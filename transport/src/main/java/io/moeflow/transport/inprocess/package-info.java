/**
 * The in-process back-end: ranks are threads of one JVM joined by ring buffers, for fast unit tests
 * and for simulations that run the real engine.
 */
package io.moeflow.transport.inprocess;
