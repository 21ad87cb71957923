package io.moeflow.transport.rdma;

import java.io.File;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Supplier;
import java.util.stream.Stream;

/**
 * Whether this host can run the RDMA back-end: an RDMA device, libibverbs and librdmacm, and
 * libdisni (which is in no package: built from DiSNI's sources). Probed once per JVM and
 * remembered: the first failed load of DiSNI's native class poisons every later use in the JVM, so
 * nothing else should touch DiSNI before {@link #probe()} said yes. Never throws a
 * {@link LinkageError}: what is missing comes back as one line.
 */
public final class RdmaSupport {
    private static final List<String> LIBRARY_DIRS = List.of("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu",
        "/usr/lib64", "/usr/lib", "/lib/x86_64-linux-gnu", "/lib64", "/lib", "/usr/local/lib");
    private static Status cached;
    private static String linkFailure;

    /** Makes a {@link Verbs} (e.g. a {@link DisniVerbs}); may throw what DiSNI's native loading throws. */
    @FunctionalInterface
    public interface VerbsFactory {
        Verbs create() throws java.io.IOException;
    }

    /**
     * The probe's result.
     *
     * @param available true if everything is there
     * @param missing   what is missing, one line with how to install each (empty if available)
     */
    public record Status(boolean available, String missing) {
        /** One line for the user: what is missing and how to install it. */
        public String describe() {
            return available ? "RDMA available (device, libibverbs, librdmacm, libdisni)" : "RDMA unavailable: " + missing;
        }

        /** The probe as one field of a rendezvous message: {@code yes}, or {@code no: <what is missing>}. */
        public String toField() {
            return available ? "yes" : "no: " + missing;
        }

        /** Reads {@link #toField()}; a node that sent nothing (an older agent) counts as lacking RDMA. */
        public static Status ofField(final String field) {
            if ("yes".equals(field)) {
                return new Status(true, "");
            }
            if (field != null && field.startsWith("no: ")) {
                return new Status(false, field.substring(4));
            }
            return new Status(false, "its agent did not report an RDMA probe (" + field + ")");
        }
    }

    private RdmaSupport() {
    }

    /** The probe of this host, run on the first call and remembered. */
    public static synchronized Status probe() {
        if (cached == null) {
            final String ldPath = System.getenv("LD_LIBRARY_PATH");
            final List<Path> dirs = new ArrayList<>();
            for (final String d : (ldPath == null ? "" : ldPath).split(File.pathSeparator)) {
                if (!d.isEmpty()) {
                    dirs.add(Path.of(d));
                }
            }
            LIBRARY_DIRS.forEach(d -> dirs.add(Path.of(d)));
            cached = probe(Path.of("/sys/class/infiniband"), dirs, RdmaSupport::loadDisni);
        }
        return cached;
    }

    /**
     * The probe with its inputs given (tests): the device directory, where to look for the verbs
     * libraries, and how to load libdisni (returns null on success, the error otherwise). libdisni
     * is only loaded if the rest is there.
     */
    static Status probe(final Path deviceDir, final List<Path> libraryDirs, final Supplier<Throwable> disniLoader) {
        final List<String> missing = new ArrayList<>();
        if (!hasEntries(deviceDir)) {
            missing.add("an RDMA device (" + deviceDir + " is empty or absent: install the NIC's driver, or for testing load"
                + " Soft-RoCE as root: modprobe rdma_rxe && rdma link add rxe0 type rxe netdev <interface>)");
        }
        if (!found("libibverbs.so.1", libraryDirs)) {
            missing.add("libibverbs.so.1 (apt-get install libibverbs1 ibverbs-providers, or dnf install rdma-core)");
        }
        if (!found("librdmacm.so.1", libraryDirs)) {
            missing.add("librdmacm.so.1 (apt-get install librdmacm1, or dnf install librdmacm)");
        }
        if (missing.isEmpty()) {
            final Throwable error = disniLoader.get();
            if (error != null) {
                missing.add("libdisni (" + error.getClass().getSimpleName() + ": " + firstLine(error.getMessage())
                    + "; build it from DiSNI 2.1's libdisni/ directory and put it on LD_LIBRARY_PATH, see docs/rdma.md)");
            }
        } else {
            missing.add("and libdisni was not tried (it needs the above; build it from DiSNI 2.1's libdisni/, see docs/rdma.md)");
        }
        return new Status(missing.isEmpty(), String.join("; ", missing));
    }

    /**
     * Opens the verbs of the RDMA back-end: fails with one line if the probe said no, and turns a
     * {@link LinkageError} of DiSNI's native class (libdisni missing or of another version) into one
     * line too, remembering it so that no later attempt touches the poisoned class again.
     */
    public static Verbs open(final VerbsFactory factory) {
        final Status status = probe();
        synchronized (RdmaSupport.class) {
            if (linkFailure != null) {
                throw new io.moeflow.transport.TransportException("RDMA unavailable: " + linkFailure);
            }
        }
        if (!status.available()) {
            throw new io.moeflow.transport.TransportException(status.describe());
        }
        return openChecked(factory);
    }

    /** {@link #open} after the probe (tests inject a factory that fails to link). */
    static Verbs openChecked(final VerbsFactory factory) {
        synchronized (RdmaSupport.class) {
            if (linkFailure != null) {
                throw new io.moeflow.transport.TransportException("RDMA unavailable: " + linkFailure);
            }
            try {
                return factory.create();
            } catch (final LinkageError e) {
                linkFailure = "libdisni could not be used (" + e.getClass().getSimpleName() + ": " + firstLine(e.getMessage())
                    + "); build libdisni of DiSNI 2.1 (JNI version 32), see docs/rdma.md";
                throw new io.moeflow.transport.TransportException("RDMA unavailable: " + linkFailure);
            } catch (final java.io.IOException e) {
                throw new io.moeflow.transport.TransportException("RDMA device could not be opened: " + firstLine(e.getMessage())
                    + " (\"no context found\" means no RDMA device: see docs/rdma.md)", e);
            }
        }
    }

    /** Forgets a remembered link failure (tests only: a real JVM cannot recover from one). */
    static synchronized void forgetLinkFailureForTests() {
        linkFailure = null;
    }

    private static Throwable loadDisni() {
        try {
            System.loadLibrary("disni");
            return null;
        } catch (final LinkageError | SecurityException e) {
            return e;
        }
    }

    private static boolean hasEntries(final Path dir) {
        if (!Files.isDirectory(dir)) {
            return false;
        }
        try (Stream<Path> entries = Files.list(dir)) {
            return entries.findAny().isPresent();
        } catch (final IOException e) {
            return false;
        }
    }

    private static boolean found(final String library, final List<Path> dirs) {
        for (final Path dir : dirs) {
            if (Files.exists(dir.resolve(library))) {
                return true;
            }
        }
        return false;
    }

    private static String firstLine(final String message) {
        if (message == null) {
            return "no message";
        }
        final int nl = message.indexOf('\n');
        return nl < 0 ? message : message.substring(0, nl);
    }
}
