package io.moeflow.transport.rdma;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;

import org.agrona.BufferUtil;

/**
 * Equal blocks (one per peer) in as few registrations as fit: a registration holds at most
 * {@code maxRegistrationBytes} (2 GiB on hardware, an {@code int} length), so blocks are packed into
 * chunks, a block never spans two, and every chunk is registered once, at construction.
 */
final class RegisteredMemory {
    private final List<MemoryRegion> chunks = new ArrayList<>();
    private final int blockBytes;
    private final int blocksPerChunk;

    RegisteredMemory(final Verbs verbs, final int blockBytes, final int blocks, final long maxRegistrationBytes)
        throws IOException {
        if (blockBytes <= 0 || blocks < 0) {
            throw new IllegalArgumentException("blockBytes=" + blockBytes + " blocks=" + blocks);
        }
        if (blockBytes > maxRegistrationBytes) {
            throw new IllegalArgumentException("a block of " + blockBytes + " bytes does not fit one registration of at most "
                + maxRegistrationBytes + " bytes: lower the credits or the frame length");
        }
        this.blockBytes = blockBytes;
        this.blocksPerChunk = (int) Math.min(Integer.MAX_VALUE / blockBytes, maxRegistrationBytes / blockBytes);
        int left = blocks;
        while (left > 0) {
            final int n = Math.min(left, blocksPerChunk);
            final ByteBuffer buffer = BufferUtil.allocateDirectAligned(align(n * blockBytes), 64);
            chunks.add(verbs.register(buffer));
            left -= n;
        }
    }

    static int align(final int bytes) {
        return (bytes + 63) & ~63;
    }

    /** The registration holding block {@code index}. */
    MemoryRegion region(final int index) {
        return chunks.get(index / blocksPerChunk);
    }

    /** Offset of block {@code index} in its {@link #region}. */
    int offset(final int index) {
        return (index % blocksPerChunk) * blockBytes;
    }

    /** Number of registrations made. */
    int registrations() {
        return chunks.size();
    }
}
