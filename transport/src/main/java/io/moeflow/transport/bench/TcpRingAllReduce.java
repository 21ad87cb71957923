package io.moeflow.transport.bench;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import java.net.StandardSocketOptions;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * The baseline people write by hand: a ring all-reduce (reduce-scatter then all-gather) over
 * plain blocking TCP sockets on loopback. It is written to be fair, not slow: direct buffers in
 * native order, TCP_NODELAY, and a sender thread so that each step sends and receives at once;
 * it does not pipeline within a step. Benchmark use only.
 */
final class TcpRingAllReduce implements AutoCloseable {
    private final int rank;
    private final int size;
    private final SocketChannel toRight;
    private final SocketChannel fromLeft;
    private final ServerSocketChannel server;
    private final ByteBuffer sendBytes;
    private final ByteBuffer recvBytes;
    private final FloatBuffer sendFloats;
    private final FloatBuffer recvFloats;
    private final float[] scratch;
    private final Thread sender;
    private final BlockingQueue<Integer> toSend = new ArrayBlockingQueue<>(1);
    private final BlockingQueue<Object> sent = new ArrayBlockingQueue<>(1);
    private volatile boolean closed;

    TcpRingAllReduce(final int rank, final int size, final java.util.List<Integer> ports, final int maxFloats,
                     final long timeoutNs) throws IOException {
        this.rank = rank;
        this.size = size;
        server = ServerSocketChannel.open();
        server.bind(new InetSocketAddress("127.0.0.1", ports.get(rank)));
        final InetSocketAddress right = new InetSocketAddress("127.0.0.1", ports.get((rank + 1) % size));
        final long deadline = System.nanoTime() + timeoutNs;
        SocketChannel out = null;
        while (out == null) {
            try {
                out = SocketChannel.open(right);
            } catch (final IOException e) {
                if (System.nanoTime() > deadline) {
                    throw new IOException("rank " + rank + ": TCP baseline could not connect to " + right, e);
                }
                sleep(20);
            }
        }
        toRight = out;
        toRight.setOption(StandardSocketOptions.TCP_NODELAY, true);
        server.configureBlocking(false);
        SocketChannel in = server.accept();
        while (in == null) {
            if (System.nanoTime() > deadline) {
                throw new IOException("rank " + rank + ": TCP baseline: the left neighbour never connected");
            }
            sleep(5);
            in = server.accept();
        }
        fromLeft = in;
        fromLeft.configureBlocking(true);
        fromLeft.setOption(StandardSocketOptions.TCP_NODELAY, true);
        final int blockFloats = maxFloats / size + 1;
        sendBytes = ByteBuffer.allocateDirect(4 * blockFloats).order(ByteOrder.nativeOrder());
        recvBytes = ByteBuffer.allocateDirect(4 * blockFloats).order(ByteOrder.nativeOrder());
        sendFloats = sendBytes.asFloatBuffer();
        recvFloats = recvBytes.asFloatBuffer();
        scratch = new float[blockFloats];
        sender = new Thread(this::sendLoop, "tcp-baseline-sender");
        sender.setDaemon(true);
        sender.start();
    }

    private static void sleep(final long ms) {
        try {
            Thread.sleep(ms);
        } catch (final InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private void sendLoop() {
        try {
            while (!closed) {
                final Integer bytes = toSend.poll(100, TimeUnit.MILLISECONDS);
                if (bytes == null) {
                    continue;
                }
                sendBytes.clear().limit(bytes);
                while (sendBytes.hasRemaining()) {
                    toRight.write(sendBytes);
                }
                sent.put(Boolean.TRUE);
            }
        } catch (final IOException | InterruptedException e) {
            if (!closed) {
                sent.offer(e);
            }
        }
    }

    /** In-place sum all-reduce of {@code buf[0, n)}. */
    void allReduce(final float[] buf, final int n) throws IOException, InterruptedException {
        for (int step = 0; step < 2 * (size - 1); step++) {
            final int sendBlock = Math.floorMod(rank - step, size);
            final int recvBlock = Math.floorMod(rank - step - 1, size);
            final int sendStart = (int) ((long) sendBlock * n / size);
            final int sendLength = (int) ((long) (sendBlock + 1) * n / size) - sendStart;
            sendFloats.clear();
            sendFloats.put(buf, sendStart, sendLength);
            toSend.put(4 * sendLength);
            final int recvStart = (int) ((long) recvBlock * n / size);
            final int recvLength = (int) ((long) (recvBlock + 1) * n / size) - recvStart;
            recvBytes.clear().limit(4 * recvLength);
            while (recvBytes.hasRemaining()) {
                if (fromLeft.read(recvBytes) < 0) {
                    throw new IOException("rank " + rank + ": TCP baseline peer closed the connection");
                }
            }
            recvFloats.clear();
            if (step < size - 1) {
                recvFloats.get(scratch, 0, recvLength);
                for (int i = 0; i < recvLength; i++) {
                    buf[recvStart + i] += scratch[i];
                }
            } else {
                recvFloats.get(buf, recvStart, recvLength);
            }
            final Object done = sent.poll(60, TimeUnit.SECONDS);
            if (done != Boolean.TRUE) {
                throw new IOException("rank " + rank + ": TCP baseline send failed: " + done);
            }
        }
    }

    @Override
    public void close() {
        closed = true;
        try {
            toRight.close();
            fromLeft.close();
            server.close();
            sender.join(1000);
        } catch (final IOException e) {
            throw new UncheckedIOException(e);
        } catch (final InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
