package io.moeflow.transport;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.management.ManagementFactory;
import java.nio.ByteBuffer;

import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

import org.agrona.BufferUtil;
import org.agrona.concurrent.UnsafeBuffer;
import org.junit.jupiter.api.Test;

/** The frame tag is HMAC-SHA256 truncated, binds bytes, position and sequence, and costs no allocation. */
class FrameAuthenticatorTest {
    private static final byte[] KEY = new byte[32];

    static {
        for (int i = 0; i < KEY.length; i++) {
            KEY[i] = (byte) (i * 7 + 1);
        }
    }

    @Test
    void shouldTagWithTheJdkHmacSha256OfPositionSequenceAndBytes() throws Exception {
        final FrameAuthenticator auth = new FrameAuthenticator(KEY, 1000);
        final UnsafeBuffer frame = new UnsafeBuffer(new byte[100 + FrameAuthenticator.TRAILER_LENGTH]);
        for (int i = 0; i < 100; i++) {
            frame.putByte(i, (byte) (i * 31));
        }
        auth.seal(frame, 0, 100, 0x1234_5678_9ABCL, 42);
        final Mac mac = Mac.getInstance("HmacSHA256");
        mac.init(new SecretKeySpec(KEY, "HmacSHA256"));
        final ByteBuffer prefix = ByteBuffer.allocate(16).order(java.nio.ByteOrder.LITTLE_ENDIAN).putLong(0x1234_5678_9ABCL)
            .putLong(42);
        mac.update(prefix.array());
        mac.update(frame.byteArray(), 0, 100);
        final byte[] expected = java.util.Arrays.copyOf(mac.doFinal(), FrameAuthenticator.TAG_BYTES);
        final byte[] tag = new byte[FrameAuthenticator.TAG_BYTES];
        frame.getBytes(108, tag);
        assertArrayEquals(expected, tag, "HMAC-SHA256 truncated to 16 bytes");
        assertEquals(42, FrameAuthenticator.sequence(frame, 0, 100 + FrameAuthenticator.TRAILER_LENGTH));
    }

    @Test
    void shouldRejectAnyChangedByteAnotherPositionOrAnotherKey() {
        final FrameAuthenticator auth = new FrameAuthenticator(KEY, 1000);
        final int length = 64 + FrameAuthenticator.TRAILER_LENGTH;
        final UnsafeBuffer frame = new UnsafeBuffer(BufferUtil.allocateDirectAligned(length, 64)); // off-heap, as Aeron's log
        auth.seal(frame, 0, 64, 7, 1);
        assertTrue(auth.verify(frame, 0, length, 7));
        assertFalse(auth.verify(frame, 0, length, 8), "another stream position");
        for (int i = 0; i < length; i++) {
            frame.putByte(i, (byte) (frame.getByte(i) ^ 1));
            assertFalse(auth.verify(frame, 0, length, 7), "byte " + i + " changed");
            frame.putByte(i, (byte) (frame.getByte(i) ^ 1));
        }
        final byte[] otherKey = KEY.clone();
        otherKey[0] ^= 1;
        assertFalse(new FrameAuthenticator(otherKey, 1000).verify(frame, 0, length, 7), "another key");
        assertFalse(auth.verify(frame, 0, FrameAuthenticator.TRAILER_LENGTH - 1, 7), "shorter than a trailer");
    }

    @Test
    void shouldSealAndVerifyWithoutAllocating() {
        final FrameAuthenticator sender = new FrameAuthenticator(KEY, 65_504);
        final FrameAuthenticator receiver = new FrameAuthenticator(KEY, 65_504);
        final UnsafeBuffer heap = new UnsafeBuffer(new byte[65_504 + FrameAuthenticator.TRAILER_LENGTH]);
        final UnsafeBuffer direct = new UnsafeBuffer(BufferUtil.allocateDirectAligned(1408 + FrameAuthenticator.TRAILER_LENGTH, 64));
        final com.sun.management.ThreadMXBean threads = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        final long self = Thread.currentThread().getId();
        long fewest = Long.MAX_VALUE;
        boolean allVerified = true;
        for (int round = 0; round < 5; round++) {
            final long before = threads.getThreadAllocatedBytes(self);
            for (int i = 0; i < 200; i++) {
                sender.seal(heap, 0, 65_504, i, i + 1);
                allVerified &= receiver.verify(heap, 0, 65_504 + FrameAuthenticator.TRAILER_LENGTH, i);
                sender.seal(direct, 0, 1408, i, i + 1);
                allVerified &= receiver.verify(direct, 0, 1408 + FrameAuthenticator.TRAILER_LENGTH, i);
            }
            final long bytes = threads.getThreadAllocatedBytes(self) - before;
            if (round > 0) {
                fewest = Math.min(fewest, bytes);
            }
        }
        assertTrue(allVerified);
        assertEquals(0, fewest, "bytes allocated by 800 seals and verifies of 64 KiB and 1408-byte frames");
    }
}
