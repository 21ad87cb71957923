package io.moeflow.transport.bench;

import java.io.Closeable;
import java.io.IOException;
import java.net.DatagramSocket;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.util.ArrayList;
import java.util.List;

/**
 * Free loopback ports for jobs on one host: each is bound once by the operating system's choice and
 * released just before use (another process could take it in between; a clash fails loudly at bind).
 */
public final class LoopbackPorts {
    private LoopbackPorts() {
    }

    /** {@code n} free UDP endpoints {@code 127.0.0.1:port}. */
    public static List<String> udpEndpoints(final int n) throws IOException {
        final List<Closeable> sockets = new ArrayList<>();
        try {
            final List<String> endpoints = new ArrayList<>();
            for (int i = 0; i < n; i++) {
                final DatagramSocket socket = new DatagramSocket(0, InetAddress.getLoopbackAddress());
                sockets.add(socket);
                endpoints.add("127.0.0.1:" + socket.getLocalPort());
            }
            return endpoints;
        } finally {
            closeAll(sockets);
        }
    }

    /** {@code n} free TCP ports on 127.0.0.1. */
    public static List<Integer> tcpPorts(final int n) throws IOException {
        final List<Closeable> sockets = new ArrayList<>();
        try {
            final List<Integer> ports = new ArrayList<>();
            for (int i = 0; i < n; i++) {
                final ServerSocket socket = new ServerSocket(0, 1, InetAddress.getLoopbackAddress());
                sockets.add(socket);
                ports.add(socket.getLocalPort());
            }
            return ports;
        } finally {
            closeAll(sockets);
        }
    }

    private static void closeAll(final List<Closeable> sockets) throws IOException {
        for (final Closeable socket : sockets) {
            socket.close();
        }
    }
}
