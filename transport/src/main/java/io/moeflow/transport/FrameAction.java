package io.moeflow.transport;

/** What a {@link FrameHandler} tells the transport to do with the frame it was shown. */
public enum FrameAction {
    /** The frame is consumed; deliver the next one. */
    CONTINUE,
    /** The frame is consumed; stop this poll. */
    BREAK,
    /** The frame is not consumed: leave it at the head of the stream for a later poll, and stop. */
    ABORT
}
