package io.moeflow.checkpoint;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.OverlappingFileLockException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * An exclusive OS file lock on a file in a checkpoints directory, held by one writer for its whole life. The operating
 * system releases it when the process dies (even by SIGKILL), so a crashed run never blocks the next one. The file
 * holds the owner's pid for the message a second writer gets; it is never deleted (deleting a lock file lets two
 * processes lock two different files of the same name).
 */
final class WriterLock implements AutoCloseable {
    /**
     * Lock files held in this JVM. Checked before opening the file: on Linux, closing any channel of a locked file
     * can drop the process's lock on it, so a second writer in the same JVM must not even open the file.
     */
    private static final Set<Path> HELD_HERE = ConcurrentHashMap.newKeySet();

    private final Path file;
    private final FileChannel channel;
    private final FileLock lock;

    private WriterLock(final Path file, final FileChannel channel, final FileLock lock) {
        this.file = file;
        this.channel = channel;
        this.lock = lock;
    }

    /**
     * Takes the lock on {@code directory/name} without waiting.
     *
     * @throws CheckpointException when another writer (in this or another process) holds it, naming its pid
     */
    static WriterLock acquire(final Path directory, final String name) {
        final Path file = directory.resolve(name).toAbsolutePath().normalize();
        if (!HELD_HERE.add(file)) {
            throw held(directory, name, ProcessHandle.current().pid() + ", this one");
        }
        FileChannel channel = null;
        try {
            channel = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.READ,
                StandardOpenOption.WRITE);
            final FileLock lock = channel.tryLock();
            if (lock == null) {
                final String holder = Files.readString(file, StandardCharsets.UTF_8).strip();
                channel.close();
                HELD_HERE.remove(file);
                throw held(directory, name, holder.isEmpty() ? "?" : holder);
            }
            channel.truncate(0);
            channel.write(ByteBuffer.wrap((ProcessHandle.current().pid() + "\n").getBytes(StandardCharsets.UTF_8)),
                0);
            return new WriterLock(file, channel, lock);
        } catch (final IOException | OverlappingFileLockException e) {
            closeQuietly(channel);
            HELD_HERE.remove(file);
            throw new CheckpointException(directory, null, null, "cannot lock " + name + ": " + e,
                "check that the directory is writable", e);
        }
    }

    private static CheckpointException held(final Path directory, final String name, final String holder) {
        return new CheckpointException(directory, null, null, "another checkpoint writer is using this directory ("
            + name + " is locked by process " + holder + "); two runs must never write into one run directory",
            "wait for the other run to finish (or stop it), or give this run another --run-name");
    }

    private static void closeQuietly(final FileChannel channel) {
        if (channel != null) {
            try {
                channel.close();
            } catch (final IOException ignored) {
                // Closing releases the lock; nothing else to do.
            }
        }
    }

    /** Releases the lock (the file stays). */
    @Override
    public void close() {
        try {
            lock.release();
        } catch (final IOException ignored) {
            // Closing the channel below releases it too.
        }
        closeQuietly(channel);
        HELD_HERE.remove(file);
    }
}
