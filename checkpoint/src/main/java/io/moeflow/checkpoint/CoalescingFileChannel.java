package io.moeflow.checkpoint;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.ReadableByteChannel;
import java.nio.channels.WritableByteChannel;

/**
 * A {@link FileChannel} that gathers consecutive relative writes in one direct buffer and hands them to the real
 * channel in large positional writes.
 *
 * <p>Why: jHDF 0.13.0 writes a contiguous dataset one innermost row at a time ({@code FloatingPoint.writeData}: one
 * {@code FileChannel.write} of {@code shape[rank-1] * 4} bytes per row), so a {@code [256, 128]} float32 matrix costs
 * 256 system calls of 512 bytes, each also copied by the JDK into a temporary direct buffer. Through this channel the
 * same bytes reach the file in a few writes of {@code buffer.capacity()} bytes; the resulting file is byte-identical.
 *
 * <p>Semantics are those of a plain file channel: any operation other than a relative write (a positional write, a
 * read, {@code size}, {@code force}, a move of the position, close) first writes the pending bytes. Not thread-safe:
 * one writer thread, as jHDF uses it.
 */
final class CoalescingFileChannel extends FileChannel {
    private final FileChannel file;
    private final ByteBuffer buffer;
    /** File position of {@code buffer}'s first byte; the channel's position is {@code start + buffer.position()}. */
    private long start;

    /**
     * @param file   the real channel; only positional operations are used on it
     * @param buffer a direct buffer the caller owns and may reuse after this channel is closed
     */
    CoalescingFileChannel(final FileChannel file, final ByteBuffer buffer) throws IOException {
        this.file = file;
        this.buffer = buffer;
        this.buffer.clear();
        this.start = file.position();
    }

    /** Writes the gathered bytes to the file. */
    private void flushPending() throws IOException {
        buffer.flip();
        writeThrough(buffer);
        buffer.clear();
    }

    /** Writes all of {@code src} at the current end of the written bytes. */
    private void writeThrough(final ByteBuffer src) throws IOException {
        while (src.hasRemaining()) {
            start += file.write(src, start);
        }
    }

    @Override
    public int write(final ByteBuffer src) throws IOException {
        ensureOpen();
        final int length = src.remaining();
        if (src.isDirect() && length >= buffer.capacity()) {
            // Large direct source: one copy fewer by writing it straight through.
            flushPending();
            writeThrough(src);
            return length;
        }
        while (src.hasRemaining()) {
            if (!buffer.hasRemaining()) {
                flushPending();
            }
            final int n = Math.min(src.remaining(), buffer.remaining());
            final int limit = src.limit();
            src.limit(src.position() + n);
            buffer.put(src);
            src.limit(limit);
        }
        return length;
    }

    @Override
    public long write(final ByteBuffer[] srcs, final int offset, final int length) throws IOException {
        long total = 0;
        for (int i = offset; i < offset + length; i++) {
            total += write(srcs[i]);
        }
        return total;
    }

    @Override
    public int write(final ByteBuffer src, final long position) throws IOException {
        ensureOpen();
        flushPending();
        return file.write(src, position);
    }

    @Override
    public int read(final ByteBuffer dst) throws IOException {
        ensureOpen();
        flushPending();
        final int n = file.read(dst, start);
        if (n > 0) {
            start += n;
        }
        return n;
    }

    @Override
    public long read(final ByteBuffer[] dsts, final int offset, final int length) throws IOException {
        long total = 0;
        for (int i = offset; i < offset + length; i++) {
            final int n = read(dsts[i]);
            if (n < 0) {
                return total == 0 ? -1 : total;
            }
            total += n;
            if (dsts[i].hasRemaining()) {
                break;
            }
        }
        return total;
    }

    @Override
    public int read(final ByteBuffer dst, final long position) throws IOException {
        ensureOpen();
        flushPending();
        return file.read(dst, position);
    }

    @Override
    public long position() throws IOException {
        ensureOpen();
        return start + buffer.position();
    }

    @Override
    public FileChannel position(final long newPosition) throws IOException {
        ensureOpen();
        if (newPosition < 0) {
            throw new IllegalArgumentException("newPosition=" + newPosition + " must be >= 0");
        }
        if (newPosition != position()) {
            flushPending();
            start = newPosition;
        }
        return this;
    }

    @Override
    public long size() throws IOException {
        ensureOpen();
        flushPending();
        return file.size();
    }

    @Override
    public FileChannel truncate(final long size) throws IOException {
        ensureOpen();
        flushPending();
        file.truncate(size);
        start = Math.min(start, size);
        return this;
    }

    @Override
    public void force(final boolean metaData) throws IOException {
        ensureOpen();
        flushPending();
        file.force(metaData);
    }

    @Override
    public long transferTo(final long position, final long count, final WritableByteChannel target)
        throws IOException {
        ensureOpen();
        flushPending();
        return file.transferTo(position, count, target);
    }

    @Override
    public long transferFrom(final ReadableByteChannel src, final long position, final long count)
        throws IOException {
        ensureOpen();
        flushPending();
        return file.transferFrom(src, position, count);
    }

    @Override
    public MappedByteBuffer map(final MapMode mode, final long position, final long size) throws IOException {
        ensureOpen();
        flushPending();
        return file.map(mode, position, size);
    }

    @Override
    public FileLock lock(final long position, final long size, final boolean shared) throws IOException {
        return file.lock(position, size, shared);
    }

    @Override
    public FileLock tryLock(final long position, final long size, final boolean shared) throws IOException {
        return file.tryLock(position, size, shared);
    }

    @Override
    protected void implCloseChannel() throws IOException {
        try {
            flushPending();
        } finally {
            file.close();
        }
    }

    private void ensureOpen() throws IOException {
        if (!isOpen()) {
            throw new java.nio.channels.ClosedChannelException();
        }
    }
}
