package io.moeflow.transport.aeron;

import java.net.InetSocketAddress;

import io.aeron.driver.DataPacketDispatcher;
import io.aeron.driver.MediaDriver;
import io.aeron.driver.ReceiveChannelEndpointSupplier;
import io.aeron.driver.media.ReceiveChannelEndpoint;
import io.aeron.driver.media.UdpChannel;
import io.aeron.logbuffer.FrameDescriptor;
import io.aeron.protocol.DataHeaderFlyweight;
import io.aeron.protocol.HeaderFlyweight;
import org.agrona.BitUtil;
import org.agrona.concurrent.UnsafeBuffer;
import org.agrona.concurrent.status.AtomicCounter;

import io.moeflow.transport.FrameAuthenticator;
import io.moeflow.transport.TransportCounters;
import io.moeflow.transport.Wire;

/**
 * Checks the tag of every MoEFlow frame in a UDP datagram inside the embedded media driver, before
 * Aeron writes it into the image's log. Aeron keeps the first frame it receives for a stream
 * position, so a forged datagram that reached the log first would displace the genuine frame at
 * that position for good; dropped here, it never takes the place, the genuine frame arrives and the
 * result is unchanged. Rules per frame of a datagram, on streams with an installed key:
 * <ul>
 *   <li>a frame marked authenticated (Aeron reserved value != 0) must carry the tag of its bytes,
 *       sequence number and position (term id, term offset): replays at another position fail too;</li>
 *   <li>an unmarked frame must be a handshake frame (HELLO, PROOF), which carries its own proof;</li>
 *   <li>a frame marked authenticated on a stream without a key yet is dropped (Aeron has it sent
 *       again once the handshake installed the key).</li>
 * </ul>
 * The datagram is cut before the first frame that fails; frames after it come again as
 * retransmissions. Runs on the driver's thread; keys are installed by the transport's thread.
 */
final class FrameAuthenticationFilter {
    /** One authenticated stream: immutable, replaced as a whole array (copy on write). */
    private static final class Entry {
        final int streamId;
        final int sessionId;
        final FrameAuthenticator authenticator;

        Entry(final int streamId, final int sessionId, final FrameAuthenticator authenticator) {
            this.streamId = streamId;
            this.sessionId = sessionId;
            this.authenticator = authenticator;
        }
    }

    private final TransportCounters counters;
    private final int maxFrameLength;
    private volatile Entry[] entries = new Entry[0];

    FrameAuthenticationFilter(final TransportCounters counters, final int maxFrameLength) {
        this.counters = counters;
        this.maxFrameLength = maxFrameLength;
    }

    /** Requires authenticated frames on ({@code streamId}, {@code sessionId}) from now on. */
    synchronized void install(final int streamId, final int sessionId, final byte[] key) {
        final Entry[] old = entries;
        final Entry[] grown = java.util.Arrays.copyOf(old, old.length + 1);
        grown[old.length] = new Entry(streamId, sessionId, new FrameAuthenticator(key, maxFrameLength));
        entries = grown;
    }

    private Entry find(final int streamId, final int sessionId) {
        final Entry[] all = entries;
        for (final Entry e : all) {
            if (e.streamId == streamId && e.sessionId == sessionId) {
                return e;
            }
        }
        return null;
    }

    /** The supplier to give the driver's context. */
    ReceiveChannelEndpointSupplier endpointSupplier() {
        return (udpChannel, dispatcher, statusIndicator, context) ->
            new AuthenticatingEndpoint(udpChannel, dispatcher, statusIndicator, context);
    }

    /**
     * Bytes of the datagram's leading frames that may go into the log.
     */
    int acceptedPrefix(final UnsafeBuffer buffer, final int length, final int streamId, final int sessionId) {
        final Entry entry = find(streamId, sessionId);
        int offset = 0;
        while (offset + DataHeaderFlyweight.HEADER_LENGTH <= length) {
            final int frameLength = buffer.getInt(offset + HeaderFlyweight.FRAME_LENGTH_FIELD_OFFSET);
            final int type = buffer.getShort(offset + HeaderFlyweight.TYPE_FIELD_OFFSET) & 0xFFFF;
            if (frameLength <= DataHeaderFlyweight.HEADER_LENGTH || type != HeaderFlyweight.HDR_TYPE_DATA) {
                if (frameLength <= 0) {
                    return length; // a heartbeat: no frames
                }
                offset += BitUtil.align(frameLength, FrameDescriptor.FRAME_ALIGNMENT); // padding or empty
                continue;
            }
            final int payload = offset + DataHeaderFlyweight.HEADER_LENGTH;
            final int payloadLength = Math.min(frameLength, length - offset) - DataHeaderFlyweight.HEADER_LENGTH;
            final long reserved = buffer.getLong(offset + DataHeaderFlyweight.RESERVED_VALUE_OFFSET);
            final boolean ok;
            if (reserved != 0) {
                final long position = position(buffer.getInt(offset + DataHeaderFlyweight.TERM_ID_FIELD_OFFSET),
                    buffer.getInt(offset + DataHeaderFlyweight.TERM_OFFSET_FIELD_OFFSET));
                ok = entry != null && entry.authenticator.verify(buffer, payload, payloadLength, position);
                if (!ok && entry != null) {
                    counters.onForgedFrame();
                }
            } else {
                ok = entry == null || isHandshake(buffer, payload, payloadLength);
                if (!ok) {
                    counters.onForgedFrame();
                }
            }
            if (!ok) {
                return offset;
            }
            offset += BitUtil.align(frameLength, FrameDescriptor.FRAME_ALIGNMENT);
        }
        return Math.min(offset, length);
    }

    /** What a frame's tag binds it to: its term id and offset, the same on sender and receiver. */
    static long position(final int termId, final int termOffset) {
        return ((long) termId << 32) | (termOffset & 0xFFFFFFFFL);
    }

    private static boolean isHandshake(final UnsafeBuffer buffer, final int offset, final int length) {
        if (!Wire.isWellFormed(buffer, offset, length)) {
            return false;
        }
        final byte kind = Wire.kind(buffer, offset);
        return kind == Wire.KIND_HELLO || kind == Wire.KIND_PROOF;
    }

    /** A UDP receive endpoint that lets only the accepted prefix of each datagram into the logs. */
    private final class AuthenticatingEndpoint extends ReceiveChannelEndpoint {
        AuthenticatingEndpoint(final UdpChannel udpChannel, final DataPacketDispatcher dispatcher,
                               final AtomicCounter statusIndicator, final MediaDriver.Context context) {
            super(udpChannel, dispatcher, statusIndicator, context);
        }

        @Override
        public int onDataPacket(final DataHeaderFlyweight header, final UnsafeBuffer buffer, final int length,
                                final InetSocketAddress srcAddress, final int transportIndex) {
            final int accepted = acceptedPrefix(buffer, length, header.streamId(), header.sessionId());
            if (accepted <= 0) {
                return 0;
            }
            return super.onDataPacket(header, buffer, accepted, srcAddress, transportIndex);
        }
    }
}
