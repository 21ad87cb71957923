/**
 * Training data with a difficulty in [0,1] and a domain, and the scheduler that decides which samples and which
 * learning rate each step gets.
 *
 * <ul>
 *   <li>{@link io.moeflow.curriculum.Dataset}: samples as UTF-8 bytes sorted by difficulty, from the built-in
 *       generator ({@link io.moeflow.curriculum.BuiltinConfig}), JSONL or plain text files; bad files raise
 *       {@link io.moeflow.curriculum.DataFormatException} with file and line.</li>
 *   <li>{@link io.moeflow.curriculum.CurriculumScheduler}: configured by
 *       {@link io.moeflow.curriculum.CurriculumConfig} (staged, DeepSpeed pacing, or none), fills packed token rows
 *       and a {@link io.moeflow.curriculum.StepPlan} each step without allocating, and saves/restores its
 *       {@link io.moeflow.curriculum.CurriculumState}.</li>
 * </ul>
 * The module knows nothing of the model; see docs/curriculum.md.
 */
package io.moeflow.curriculum;
