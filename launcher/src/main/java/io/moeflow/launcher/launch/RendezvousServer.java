package io.moeflow.launcher.launch;

import java.io.EOFException;
import java.io.IOException;
import java.net.BindException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.SocketException;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * The TCP end of the rendezvous, at the master: accepts node agents ({@code AGENT}) and workers
 * ({@code WORKER}), checks that each proves the job's join key in its first line, and turns
 * everything that arrives into {@link Event}s for the {@link JobMaster}'s single thread. A
 * connection that does not open with a valid hello within {@link #HELLO_TIMEOUT_NS} is dropped.
 */
public final class RendezvousServer implements AutoCloseable {
    /** A peer has this long after connecting to say who it is. */
    static final long HELLO_TIMEOUT_NS = TimeUnit.SECONDS.toNanos(10);
    /** How often a reader thread wakes up to notice that the server closed. */
    private static final long READ_POLL_NS = TimeUnit.MILLISECONDS.toNanos(500);

    /** What happened on a connection. */
    public enum Kind { HELLO, MESSAGE, CLOSED }

    /**
     * One thing for the master to handle.
     *
     * @param hello   the connection's first message (AGENT or WORKER): says who the peer is
     * @param message the message (HELLO: the hello again; CLOSED: null)
     */
    public record Event(Kind kind, Connection connection, Message hello, Message message) {
    }

    private final ServerSocket server;
    private final String joinKey;
    private final BlockingQueue<Event> events = new LinkedBlockingQueue<>();
    private final List<Connection> connections = new ArrayList<>();
    private final Thread acceptor;
    private volatile boolean closed;

    private RendezvousServer(final ServerSocket server, final String joinKey) {
        this.server = server;
        this.joinKey = joinKey;
        this.acceptor = new Thread(this::acceptLoop, "moeflow-rendezvous-accept");
        this.acceptor.setDaemon(true);
        this.acceptor.start();
    }

    /**
     * Listens on {@code address:port} (port 0: any free port).
     *
     * @throws IllegalArgumentException with what to do when the port is taken or the address is not this host's
     */
    public static RendezvousServer bind(final String address, final int port, final String joinKey) {
        final ServerSocket socket;
        try {
            socket = new ServerSocket();
            socket.setReuseAddress(true);
        } catch (final IOException e) {
            throw new IllegalStateException("rendezvous: cannot create a server socket: " + e.getMessage(), e);
        }
        try {
            socket.bind(new InetSocketAddress(InetAddress.getByName(address), port), 64);
        } catch (final BindException e) {
            close(socket);
            throw new IllegalArgumentException("--master-port " + port + ": cannot listen on " + address + ":" + port + " ("
                + e.getMessage() + "); the port is in use or not allowed: pick another with --master-port, or 0 for any free port");
        } catch (final IOException e) {
            close(socket);
            throw new IllegalArgumentException("--master-addr " + address + ": cannot listen there (" + e.getMessage()
                + "); give an address of this host, e.g. 127.0.0.1");
        }
        return new RendezvousServer(socket, joinKey);
    }

    /** The port listened on (the one chosen when 0 was asked). */
    public int port() {
        return server.getLocalPort();
    }

    /** The next event, or empty after {@code timeoutNs}. */
    public Optional<Event> poll(final long timeoutNs) throws InterruptedException {
        return Optional.ofNullable(events.poll(timeoutNs, TimeUnit.NANOSECONDS));
    }

    private void acceptLoop() {
        while (!closed) {
            try {
                final Socket socket = server.accept();
                final Connection connection = new Connection(socket);
                synchronized (connections) {
                    if (closed) {
                        connection.close();
                        return;
                    }
                    connections.add(connection);
                }
                final Thread reader = new Thread(() -> readLoop(connection), "moeflow-rendezvous-" + connection.remote());
                reader.setDaemon(true);
                reader.start();
            } catch (final SocketException e) {
                return; // closed
            } catch (final IOException e) {
                if (!closed) {
                    System.err.println("moeflow launch: rendezvous: accept failed: " + e.getMessage());
                }
            }
        }
    }

    private void readLoop(final Connection connection) {
        Message hello = null;
        try {
            hello = connection.receive(HELLO_TIMEOUT_NS).orElse(null);
            if (hello == null || !(hello.verb().equals("AGENT") || hello.verb().equals("WORKER"))) {
                reject(connection, "say AGENT or WORKER first");
                return;
            }
            if (!JoinKey.matches(joinKey, hello.get("key", ""))) {
                reject(connection, "wrong join key: this is another job's rendezvous");
                return;
            }
            events.add(new Event(Kind.HELLO, connection, hello, hello));
            while (!closed) {
                final Optional<Message> message = connection.receive(READ_POLL_NS);
                if (message.isPresent()) {
                    events.add(new Event(Kind.MESSAGE, connection, hello, message.get()));
                }
            }
        } catch (final EOFException e) {
            // the peer is gone
        } catch (final SocketException e) {
            // reset by the peer (a killed agent or worker), or closed here: the CLOSED event says it
        } catch (final IOException e) {
            if (!closed && !connection.isClosed()) {
                System.err.println("moeflow launch: rendezvous: connection " + connection.remote() + ": " + e.getMessage());
            }
        } finally {
            connection.close();
            if (hello != null && !closed) {
                events.add(new Event(Kind.CLOSED, connection, hello, null));
            }
        }
    }

    private static void reject(final Connection connection, final String reason) {
        try {
            connection.send(Message.of("REJECT", "reason", reason));
        } catch (final IOException e) {
            // it is being dropped anyway
        }
        connection.close();
    }

    @Override
    public void close() {
        closed = true;
        close(server);
        synchronized (connections) {
            connections.forEach(Connection::close);
            connections.clear();
        }
    }

    private static void close(final ServerSocket socket) {
        try {
            socket.close();
        } catch (final IOException e) {
            // closing
        }
    }
}
