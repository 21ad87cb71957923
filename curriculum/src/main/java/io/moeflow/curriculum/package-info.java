/**
 * Training data with a difficulty in [0,1] and a domain: datasets (built-in generator, JSONL, plain
 * text) and the scheduler that decides which samples and which learning rate each step gets.
 */
package io.moeflow.curriculum;
