package io.moeflow.transport;

import org.agrona.DirectBuffer;

/** Receives the frames of one peer's stream, in order. Implementations must not allocate. */
@FunctionalInterface
public interface FrameHandler {
    /**
     * Called with one frame; {@code buffer} is only valid during the call.
     *
     * @return whether the frame is consumed and whether to go on
     */
    FrameAction onFrame(DirectBuffer buffer, int offset, int length);
}
