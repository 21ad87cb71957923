package io.moeflow.checkpoint;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;

/** The fsync-and-rename steps of the commit protocol, in one place. */
final class DurableFiles {
    private DurableFiles() {
    }

    /** Flushes a file's data and metadata to the device. */
    static void fsyncFile(final Path file) throws IOException {
        try (FileChannel channel = FileChannel.open(file, StandardOpenOption.WRITE)) {
            channel.force(true);
        }
    }

    /**
     * Flushes a directory's entries (created, renamed, deleted names) to the device. Linux allows opening a directory
     * read-only and fsyncing it; this is what makes a rename durable.
     */
    static void fsyncDirectory(final Path directory) throws IOException {
        try (FileChannel channel = FileChannel.open(directory, StandardOpenOption.READ)) {
            channel.force(true);
        }
    }

    /**
     * Replaces {@code target} with {@code text} so that a reader sees either the old or the new content: writes
     * {@code target.tmp-<pid>}, fsyncs it, renames it over the target, fsyncs the directory.
     */
    static void replaceAtomically(final Path target, final String text, final long pid) throws IOException {
        final Path tmp = target.resolveSibling(target.getFileName() + ".tmp-" + pid);
        try (FileChannel channel = FileChannel.open(tmp, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
            StandardOpenOption.TRUNCATE_EXISTING)) {
            final ByteBuffer bytes = ByteBuffer.wrap(text.getBytes(StandardCharsets.UTF_8));
            while (bytes.hasRemaining()) {
                channel.write(bytes);
            }
            channel.force(true);
        }
        Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        fsyncDirectory(target.getParent());
    }

    /** Deletes a directory tree (or a file); a missing path is not an error. Symbolic links are not followed. */
    static void deleteRecursively(final Path path) throws IOException {
        if (Files.isDirectory(path, LinkOption.NOFOLLOW_LINKS)) {
            try (DirectoryStream<Path> children = Files.newDirectoryStream(path)) {
                for (final Path child : children) {
                    deleteRecursively(child);
                }
            } catch (final NoSuchFileException e) {
                return;
            }
        }
        Files.deleteIfExists(path);
    }
}
