package io.moeflow.checkpoint;

import java.io.IOException;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Proxy;
import java.net.URI;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.SeekableByteChannel;
import java.nio.file.AccessMode;
import java.nio.file.CopyOption;
import java.nio.file.DirectoryStream;
import java.nio.file.FileStore;
import java.nio.file.FileSystem;
import java.nio.file.LinkOption;
import java.nio.file.OpenOption;
import java.nio.file.Path;
import java.nio.file.PathMatcher;
import java.nio.file.WatchService;
import java.nio.file.attribute.BasicFileAttributes;
import java.nio.file.attribute.FileAttribute;
import java.nio.file.attribute.FileAttributeView;
import java.nio.file.attribute.UserPrincipalLookupService;
import java.nio.file.spi.FileSystemProvider;
import java.util.Map;
import java.util.Set;

/**
 * Makes jHDF write through a {@link CoalescingFileChannel}.
 *
 * <p>jHDF 0.13.0 opens the file it writes itself ({@code HdfFile.write(Path)} calls
 * {@code FileChannel.open(path, READ, WRITE, CREATE)}) and has no way to pass it a channel. {@code FileChannel.open}
 * asks the path's file system provider for the channel, so the path returned here belongs to a minimal provider whose
 * only real operation is {@code newFileChannel}: it opens the real file and wraps the channel. Every other provider
 * or file system operation throws {@link UnsupportedOperationException}; {@code Path} methods other than
 * {@code getFileSystem} and {@code toAbsolutePath} are answered by the real path.
 */
final class CoalescingPath {
    private CoalescingPath() {
    }

    /**
     * A path that opens {@code real} through a write-coalescing channel.
     *
     * @param real   the file to write
     * @param buffer the direct buffer the channel gathers writes in; reused by the caller after the file is closed
     */
    static Path of(final Path real, final ByteBuffer buffer) {
        final Provider provider = new Provider(real.toAbsolutePath(), buffer);
        final Path[] self = new Path[1];
        self[0] = (Path) Proxy.newProxyInstance(Path.class.getClassLoader(), new Class<?>[] {Path.class},
            (proxy, method, args) -> {
                switch (method.getName()) {
                    case "getFileSystem":
                        return provider.fileSystem;
                    case "toAbsolutePath":
                        return self[0];
                    case "equals":
                        return proxy == args[0];
                    case "hashCode":
                        return System.identityHashCode(proxy);
                    case "toString":
                        return provider.real.toString();
                    default:
                        try {
                            return method.invoke(provider.real, args);
                        } catch (final InvocationTargetException e) {
                            throw e.getCause();
                        }
                }
            });
        return self[0];
    }

    private static UnsupportedOperationException unsupported() {
        return new UnsupportedOperationException("only FileChannel.open is supported on a coalescing path");
    }

    /** The provider: {@code newFileChannel} opens the real file behind a coalescing channel. */
    private static final class Provider extends FileSystemProvider {
        final Path real;
        final ByteBuffer buffer;
        final FileSystem fileSystem = new MinimalFileSystem(this);

        Provider(final Path real, final ByteBuffer buffer) {
            this.real = real;
            this.buffer = buffer;
        }

        @Override
        public FileChannel newFileChannel(final Path path, final Set<? extends OpenOption> options,
            final FileAttribute<?>... attrs) throws IOException {
            return new CoalescingFileChannel(FileChannel.open(real, options, attrs), buffer);
        }

        @Override
        public String getScheme() {
            return "moeflow-coalescing";
        }

        @Override
        public FileSystem newFileSystem(final URI uri, final Map<String, ?> env) {
            throw unsupported();
        }

        @Override
        public FileSystem getFileSystem(final URI uri) {
            throw unsupported();
        }

        @Override
        public Path getPath(final URI uri) {
            throw unsupported();
        }

        @Override
        public SeekableByteChannel newByteChannel(final Path path, final Set<? extends OpenOption> options,
            final FileAttribute<?>... attrs) throws IOException {
            return newFileChannel(path, options, attrs);
        }

        @Override
        public DirectoryStream<Path> newDirectoryStream(final Path dir, final DirectoryStream.Filter<? super Path> f) {
            throw unsupported();
        }

        @Override
        public void createDirectory(final Path dir, final FileAttribute<?>... attrs) {
            throw unsupported();
        }

        @Override
        public void delete(final Path path) {
            throw unsupported();
        }

        @Override
        public void copy(final Path source, final Path target, final CopyOption... options) {
            throw unsupported();
        }

        @Override
        public void move(final Path source, final Path target, final CopyOption... options) {
            throw unsupported();
        }

        @Override
        public boolean isSameFile(final Path path, final Path path2) {
            throw unsupported();
        }

        @Override
        public boolean isHidden(final Path path) {
            throw unsupported();
        }

        @Override
        public FileStore getFileStore(final Path path) {
            throw unsupported();
        }

        @Override
        public void checkAccess(final Path path, final AccessMode... modes) {
            throw unsupported();
        }

        @Override
        public <V extends FileAttributeView> V getFileAttributeView(final Path path, final Class<V> type,
            final LinkOption... options) {
            throw unsupported();
        }

        @Override
        public <A extends BasicFileAttributes> A readAttributes(final Path path, final Class<A> type,
            final LinkOption... options) {
            throw unsupported();
        }

        @Override
        public Map<String, Object> readAttributes(final Path path, final String attributes,
            final LinkOption... options) {
            throw unsupported();
        }

        @Override
        public void setAttribute(final Path path, final String attribute, final Object value,
            final LinkOption... options) {
            throw unsupported();
        }
    }

    /** A file system that only knows its provider. */
    private static final class MinimalFileSystem extends FileSystem {
        private final FileSystemProvider provider;

        MinimalFileSystem(final FileSystemProvider provider) {
            this.provider = provider;
        }

        @Override
        public FileSystemProvider provider() {
            return provider;
        }

        @Override
        public void close() {
        }

        @Override
        public boolean isOpen() {
            return true;
        }

        @Override
        public boolean isReadOnly() {
            return false;
        }

        @Override
        public String getSeparator() {
            return "/";
        }

        @Override
        public Iterable<Path> getRootDirectories() {
            throw unsupported();
        }

        @Override
        public Iterable<FileStore> getFileStores() {
            throw unsupported();
        }

        @Override
        public Set<String> supportedFileAttributeViews() {
            throw unsupported();
        }

        @Override
        public Path getPath(final String first, final String... more) {
            throw unsupported();
        }

        @Override
        public PathMatcher getPathMatcher(final String syntaxAndPattern) {
            throw unsupported();
        }

        @Override
        public UserPrincipalLookupService getUserPrincipalLookupService() {
            throw unsupported();
        }

        @Override
        public WatchService newWatchService() {
            throw unsupported();
        }
    }
}
