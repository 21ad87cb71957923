/**
 * Running a {@link io.moeflow.trainer.Trainer} as one rank of a job: the job shape
 * ({@link io.moeflow.trainer.parallel.ParallelConfig}), the communicators it is split into
 * ({@link io.moeflow.trainer.parallel.ParallelGroups}) and the data-parallel gradient reduction.
 */
package io.moeflow.trainer.parallel;
