package io.moeflow.launcher.cluster;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * A hostfile in the format DeepSpeed, Horovod and OpenMPI share: one host per line, {@code host slots=N}
 * (slots = worker JVMs on that host; a line without {@code slots=} means one). {@code #} starts a comment;
 * blank lines are ignored. OpenMPI's {@code max_slots=}/{@code max-slots=} is accepted and ignored.
 * The host is what the ssh command is given ({@code name}, {@code user@name} or an address), in file order:
 * the first line is node 0.
 *
 * @param source where the hosts were read from (for messages)
 * @param hosts  the hosts in file order, at least one, each named once
 */
public record HostFile(String source, List<Host> hosts) {
    private static final Pattern HOST = Pattern.compile("[A-Za-z0-9._@:%\\[\\]-]+");

    /**
     * One line of a hostfile.
     *
     * @param name  what ssh is given
     * @param slots worker JVMs on this host, >= 1
     * @param line  its line number in the file (1-based)
     */
    public record Host(String name, int slots, int line) {
        /** Validates the fields. */
        public Host {
            if (name == null || !HOST.matcher(name).matches()) {
                throw new IllegalArgumentException("host '" + name + "': not a host name or address");
            }
            if (slots < 1) {
                throw new IllegalArgumentException("host " + name + ": slots=" + slots + " must be >= 1");
            }
        }
    }

    /** Validates the fields: at least one host, none twice. */
    public HostFile {
        hosts = List.copyOf(hosts);
        if (hosts.isEmpty()) {
            throw new IllegalArgumentException(source + ": no hosts; write one 'host slots=N' line per node");
        }
        final Map<String, Host> seen = new HashMap<>();
        for (final Host h : hosts) {
            final Host earlier = seen.putIfAbsent(h.name(), h);
            if (earlier != null) {
                throw new IllegalArgumentException(source + ":" + h.line() + ": host " + h.name() + " is already on line "
                    + earlier.line() + "; name each host once and give it all its slots (host slots=N)");
            }
        }
    }

    /**
     * Reads a hostfile.
     *
     * @throws IllegalArgumentException naming the file and line when it cannot be read or a line is wrong
     */
    public static HostFile read(final Path file) {
        final List<String> lines;
        try {
            lines = Files.readAllLines(file);
        } catch (final IOException e) {
            throw new IllegalArgumentException("--hostfile " + file + ": cannot read it (" + e.getMessage() + ")");
        }
        return parse(file.toString(), lines);
    }

    /**
     * Parses hostfile lines.
     *
     * @param source the file's name, for messages ({@code source:line: ...})
     * @throws IllegalArgumentException naming the source and line of the first wrong line
     */
    public static HostFile parse(final String source, final List<String> lines) {
        final List<Host> hosts = new ArrayList<>();
        for (int i = 0; i < lines.size(); i++) {
            final int lineNumber = i + 1;
            String text = lines.get(i);
            final int hash = text.indexOf('#');
            if (hash >= 0) {
                text = text.substring(0, hash);
            }
            text = text.strip();
            if (text.isEmpty()) {
                continue;
            }
            final String[] words = text.split("\\s+");
            final String where = source + ":" + lineNumber + ": ";
            if (words[0].contains("=")) {
                throw new IllegalArgumentException(where + "'" + text + "' starts with an option; a line is 'host slots=N'");
            }
            int slots = 1;
            boolean slotsSeen = false;
            for (int w = 1; w < words.length; w++) {
                final String[] kv = words[w].split("=", 2);
                if (kv.length != 2) {
                    throw new IllegalArgumentException(where + "'" + words[w] + "': expected slots=N after the host");
                }
                final String key = kv[0].toLowerCase(Locale.ROOT);
                if (key.equals("slots")) {
                    if (slotsSeen) {
                        throw new IllegalArgumentException(where + "slots= given twice");
                    }
                    slotsSeen = true;
                    slots = number(where, words[w], kv[1]);
                } else if (key.equals("max_slots") || key.equals("max-slots")) {
                    number(where, words[w], kv[1]);
                } else {
                    throw new IllegalArgumentException(where + "'" + words[w] + "': unknown option; a line is 'host slots=N'");
                }
            }
            try {
                hosts.add(new Host(words[0], slots, lineNumber));
            } catch (final IllegalArgumentException e) {
                throw new IllegalArgumentException(where + e.getMessage());
            }
        }
        return new HostFile(source, hosts);
    }

    private static int number(final String where, final String word, final String value) {
        try {
            final int n = Integer.parseInt(value);
            if (n >= 1) {
                return n;
            }
        } catch (final NumberFormatException e) {
            // the message below
        }
        throw new IllegalArgumentException(where + "'" + word + "': give a whole number >= 1");
    }

    /**
     * The worker JVMs per node, which must be the same on every host (ranks of node r are r*N .. r*N+N-1).
     *
     * @param nprocPerNode the --nproc-per-node given, or null: then every host's slots must be equal
     * @throws IllegalArgumentException when the slots differ and no --nproc-per-node was given, or it exceeds a host's slots
     */
    public int nprocPerNode(final Integer nprocPerNode) {
        if (nprocPerNode != null) {
            for (final Host h : hosts) {
                if (nprocPerNode > h.slots()) {
                    throw new IllegalArgumentException("--nproc-per-node " + nprocPerNode + ": host " + h.name() + " (" + source + ":"
                        + h.line() + ") has only slots=" + h.slots() + "; give at most " + h.slots());
                }
            }
            return nprocPerNode;
        }
        final Host first = hosts.get(0);
        for (final Host h : hosts) {
            if (h.slots() != first.slots()) {
                throw new IllegalArgumentException(source + ": hosts have different slots (" + first.name() + " slots=" + first.slots()
                    + ", " + h.name() + " slots=" + h.slots() + "); every node runs the same number of workers: give "
                    + "--nproc-per-node N (at most the smallest slots) or equal slots");
            }
        }
        return first.slots();
    }
}
