package io.moeflow.launcher.launch;

import java.io.BufferedInputStream;
import java.io.BufferedWriter;
import java.io.ByteArrayOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStreamWriter;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;
import java.util.Optional;
import java.util.concurrent.TimeUnit;

/**
 * One TCP connection of the rendezvous, carrying {@link Message} lines. Sends are thread-safe; one
 * thread receives. Every receive has a timeout.
 */
public final class Connection implements AutoCloseable {
    /** The longest line accepted: a message is a few hundred bytes; anything longer is not ours. */
    static final int MAX_LINE_CHARS = 64 * 1024;

    private final Socket socket;
    private final InputStream in;
    private final BufferedWriter out;
    /** The part of a line received before a timeout: kept for the next receive. */
    private final ByteArrayOutputStream partial = new ByteArrayOutputStream();

    Connection(final Socket socket) throws IOException {
        this.socket = socket;
        socket.setTcpNoDelay(true);
        this.in = new BufferedInputStream(socket.getInputStream());
        this.out = new BufferedWriter(new OutputStreamWriter(socket.getOutputStream(), StandardCharsets.UTF_8));
    }

    /** Connects to {@code host:port}, waiting at most {@code timeoutNs}. */
    public static Connection open(final String host, final int port, final long timeoutNs) throws IOException {
        final Socket socket = new Socket();
        try {
            socket.connect(new InetSocketAddress(host, port), (int) Math.max(1, TimeUnit.NANOSECONDS.toMillis(timeoutNs)));
            return new Connection(socket);
        } catch (final IOException e) {
            socket.close();
            throw e;
        }
    }

    /** Sends one message. */
    public synchronized void send(final Message message) throws IOException {
        out.write(message.toLine());
        out.write('\n');
        out.flush();
    }

    /**
     * The next message, or empty if none came within {@code timeoutNs}.
     *
     * @throws EOFException when the other side closed the connection
     */
    public Optional<Message> receive(final long timeoutNs) throws IOException {
        socket.setSoTimeout((int) Math.max(1, TimeUnit.NANOSECONDS.toMillis(timeoutNs)));
        final String line;
        try {
            int b;
            while ((b = in.read()) != '\n') {
                if (b < 0) {
                    throw new EOFException("the rendezvous connection to " + socket.getRemoteSocketAddress() + " was closed");
                }
                partial.write(b);
                if (partial.size() > MAX_LINE_CHARS) {
                    throw new IOException("rendezvous: a line longer than " + MAX_LINE_CHARS + " bytes from "
                        + socket.getRemoteSocketAddress() + ": not a MoEFlow peer");
                }
            }
            line = partial.toString(StandardCharsets.UTF_8);
            partial.reset();
        } catch (final SocketTimeoutException e) {
            return Optional.empty();
        }
        try {
            return Optional.of(Message.parse(line));
        } catch (final IllegalArgumentException e) {
            throw new IOException(e.getMessage(), e);
        }
    }

    /** The peer's address, for messages. */
    public String remote() {
        return String.valueOf(socket.getRemoteSocketAddress());
    }

    /** This side's address (an IP literal): the interface the connection leaves by. */
    public String localAddress() {
        return socket.getLocalAddress().getHostAddress();
    }

    /** True once this side closed it. */
    public boolean isClosed() {
        return socket.isClosed();
    }

    @Override
    public void close() {
        try {
            socket.close();
        } catch (final IOException e) {
            // closing: nothing to do
        }
    }
}
