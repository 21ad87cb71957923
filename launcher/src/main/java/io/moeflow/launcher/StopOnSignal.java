package io.moeflow.launcher;

import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import io.moeflow.trainer.Trainer;

/**
 * While open, Ctrl-C or SIGTERM (a scheduler's preemption notice) asks the trainer to stop after
 * the current step and save a checkpoint; the JVM's shutdown waits for that save, at most
 * {@link #SAVE_TIMEOUT_S} seconds, so an interrupted run resumes where it stopped.
 */
final class StopOnSignal implements AutoCloseable {
    /** Long enough to write a checkpoint of a large model; schedulers usually allow 30-120 s after SIGTERM. */
    static final long SAVE_TIMEOUT_S = 60;

    private final CountDownLatch trainingDone = new CountDownLatch(1);
    private final Thread hook;

    /** @param resumeHint printed once the stop is complete, e.g. the command that continues the run */
    StopOnSignal(final Trainer trainer, final String resumeHint) {
        this.hook = new Thread(() -> {
            System.err.println("moeflow: stopping after this step and saving a checkpoint (up to " + SAVE_TIMEOUT_S
                + " s)...");
            trainer.requestStop();
            try {
                if (trainingDone.await(SAVE_TIMEOUT_S, TimeUnit.SECONDS)) {
                    System.err.println("moeflow: stopped at step " + trainer.completedSteps() + ", checkpoint saved; "
                        + resumeHint);
                } else {
                    System.err.println("moeflow: the checkpoint was not saved within " + SAVE_TIMEOUT_S + " s; the "
                        + "newest complete checkpoint is still valid");
                }
            } catch (final InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }, "moeflow-stop-on-signal");
        Runtime.getRuntime().addShutdownHook(hook);
    }

    /** Training (and its final save) is over: lets a pending shutdown proceed and removes the hook. */
    @Override
    public void close() {
        trainingDone.countDown();
        try {
            Runtime.getRuntime().removeShutdownHook(hook);
        } catch (final IllegalStateException shuttingDown) {
            // the JVM is already exiting because of a signal: the hook is running and now returns
        }
    }
}
