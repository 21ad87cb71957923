package io.moeflow.transport.rdma;

import java.nio.ByteBuffer;

import org.agrona.concurrent.UnsafeBuffer;

/** A registered direct buffer: the address and keys a work request or a peer's RDMA WRITE names. */
public final class MemoryRegion {
    private final ByteBuffer buffer;
    private final UnsafeBuffer view;
    private final long address;
    private final int localKey;
    private final int remoteKey;

    public MemoryRegion(final ByteBuffer buffer, final long address, final int localKey, final int remoteKey) {
        this.buffer = buffer;
        this.view = new UnsafeBuffer(buffer);
        this.address = address;
        this.localKey = localKey;
        this.remoteKey = remoteKey;
    }

    public ByteBuffer buffer() {
        return buffer;
    }

    /** The region's bytes, for reading and writing frames in place. */
    public UnsafeBuffer view() {
        return view;
    }

    /** Virtual address of the first byte, as the device knows it. */
    public long address() {
        return address;
    }

    public int lengthBytes() {
        return buffer.capacity();
    }

    public int localKey() {
        return localKey;
    }

    public int remoteKey() {
        return remoteKey;
    }
}
