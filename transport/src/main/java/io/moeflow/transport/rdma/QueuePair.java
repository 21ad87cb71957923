package io.moeflow.transport.rdma;

/**
 * A reliable-connected queue pair to one peer. Every post is signaled (one completion each); a post
 * returns false once the queue pair can carry nothing more (disconnected or in the error state).
 */
public interface QueuePair {
    /** The peer rank at the other end. */
    int peer();

    /** Posts a receive of at most {@code lengthBytes} into {@code region} at {@code offset}. */
    boolean postRecv(long workId, MemoryRegion region, int offset, int lengthBytes);

    /** Posts a SEND (with a 32-bit immediate) of {@code lengthBytes} from {@code region} at {@code offset}. */
    boolean postSend(long workId, MemoryRegion region, int offset, int lengthBytes, int immediate);

    /**
     * Posts an RDMA WRITE of {@code lengthBytes} from {@code region} at {@code offset} to the peer's
     * {@code remoteAddress} under {@code remoteKey}; with an immediate it also consumes one of the
     * peer's posted receives and completes there with {@code immediate}.
     */
    boolean postWrite(long workId, MemoryRegion region, int offset, int lengthBytes, long remoteAddress, int remoteKey,
                      boolean withImmediate, int immediate);

    /** False once the connection is gone (the peer closed, died, or the queue pair entered the error state). */
    boolean connected();

    /** Disconnects; posted work requests complete with a flush error. */
    void close();
}
