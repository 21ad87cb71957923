package io.moeflow.transport.aeron;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.LockSupport;
import java.util.function.Consumer;

import io.aeron.Aeron;
import io.aeron.ChannelUriStringBuilder;
import io.aeron.ExclusivePublication;
import io.aeron.Image;
import io.aeron.Publication;
import io.aeron.Subscription;
import io.aeron.logbuffer.BufferClaim;
import io.aeron.logbuffer.ControlledFragmentHandler;
import io.aeron.logbuffer.Header;
import io.aeron.protocol.DataHeaderFlyweight;
import org.agrona.CloseHelper;
import org.agrona.DirectBuffer;
import org.agrona.MutableDirectBuffer;
import org.agrona.collections.IntArrayList;
import org.agrona.concurrent.UnsafeBuffer;

import io.moeflow.transport.FrameAction;
import io.moeflow.transport.FrameAuthenticator;
import io.moeflow.transport.FrameHandler;
import io.moeflow.transport.PeerHandshake;
import io.moeflow.transport.PeerFailureException;
import io.moeflow.transport.Transport;
import io.moeflow.transport.TransportCounters;
import io.moeflow.transport.TransportException;
import io.moeflow.transport.Wire;

/**
 * {@link Transport} over Aeron: one exclusive publication per ordered pair of ranks and lane (stream
 * id {@code base + (lane * size + from) * size + to}; {@link #LANES} lanes: control, urgent and three
 * bulk lanes), IPC through a shared media driver or UDP unicast to each rank's endpoint, or both
 * ({@link AeronMedia#HYBRID}: one Aeron client on the node's shared driver for the peers of this node,
 * one on this rank's own driver for the others; everything else is the same for both kinds of peers).
 * Frames are at most one MTU of their stream (HYBRID: IPC's to the peers of this node, UDP's to the
 * others: {@link #maxFrameLength(int)} per peer), so every frame is one Aeron fragment, written in place
 * with {@code tryClaim} and read in place from the log buffer.
 *
 * <p><b>Authentication.</b> On connect every rank runs the job-token handshake every back-end runs
 * ({@link PeerHandshake}) with each peer, its HELLO and PROOF messages carried in {@link Wire#KIND_HELLO}
 * and {@link Wire#KIND_PROOF} frames on the control lane: a HELLO with a fresh nonce, a PROOF answering
 * it under the job token, and a rank accepts the stream of a peer only from the image whose PROOF
 * answers its own HELLO and verifies. The binding under the PROOF's MAC is the answering rank's
 * frame-authentication setting and the session ids of its publications to the asking rank on every
 * lane; the PROOF must arrive on the control-lane session it names, and each other lane accepts
 * exactly the image it names. Only those images are read afterwards; frames of any other
 * image on the stream (a process with a wrong or no token, another job, a stale worker) are drained,
 * dropped and counted ({@link TransportCounters#handshakesRejected()},
 * {@link TransportCounters#unauthenticatedFramesDropped()}), and the job goes on.
 *
 * <p><b>Frame authentication</b> ({@link AeronTransportConfig#frameAuthentication()}, on by default
 * for UDP and for HYBRID's UDP peers). Once a peer is authenticated, both sides derive one key per direction and lane from the
 * token, both nonces and the stream's session ({@link FrameAuthenticator#deriveKey}); every data and BYE
 * frame then carries a sequence number (also in Aeron's reserved value, which marks it as
 * authenticated) and a tag over its bytes, sequence number and stream position. Over UDP the
 * embedded driver checks tags before a frame enters the log ({@link FrameAuthenticationFilter}), so a
 * forged datagram cannot take a genuine frame's place; the data path checks sequence numbers (a
 * replay is dropped, a gap fails the operation by name). Without that driver (IPC, or UDP through
 * an external driver) the data path checks the tags itself. Handshake frames carry their own proof.
 * Frames are authenticated, not encrypted.
 */
public final class AeronTransport implements Transport {
    /** Lanes per ordered pair of ranks: control, urgent, three bulk. */
    public static final int LANES = 5;
    /** The control lane carries handshake, BYE and ABORT frames only: small terms. */
    private static final int CONTROL_TERM_LENGTH_BYTES = 64 * 1024;
    /** Binding of this rank's handshake with a peer: the frame-authentication flag, then a session id per lane. */
    private static final int BINDING_BYTES = 1 + 4 * LANES;
    /** HELLO and PROOF frames: the Wire header, then the {@link PeerHandshake} message. */
    private static final int HANDSHAKE_LENGTH = Wire.HEADER_LENGTH + PeerHandshake.HEADER_BYTES + BINDING_BYTES;
    /** BYE: the header, then the position this rank's stream to the peer reached on each data lane. */
    private static final int BYE_LENGTH = Wire.HEADER_LENGTH + 8 * (LANES - 1);
    /** BYE: the rank that says it. */
    private static final int BYE_FIELD_FROM = 4;
    private static final long HELLO_INTERVAL_NS = TimeUnit.MILLISECONDS.toNanos(50);

    private final AeronTransportConfig config;
    private final int rank;
    private final int size;
    private final JobMediaDriver driver;
    /** The client on the node's shared driver (IPC peers), or null if this rank has none. */
    private final Client ipcClient;
    /** The client on this rank's own driver (UDP peers), or null if this rank has none. */
    private final Client udpClient;
    /** The client that reaches each peer (null for this rank). */
    private final Client[] clientOf;
    private final ExclusivePublication[] publications;
    private final Subscription[] subscriptions;
    /** The authenticated image of each peer's stream, null until its PROOF verified. */
    private final Image[] authenticated;
    /** Sessions of the images whose HELLO this rank answered with a PROOF, per peer (handshake only). */
    private final IntArrayList[] answeredSessions;
    private final boolean[] byeReceived;
    /** Per peer and lane: the position its stream had reached when it said BYE (lanes are not ordered). */
    private final long[][] byePositions;
    private final BufferClaim[] claims;
    /** Per lane and peer (lane 0 is the control lane: the same objects as the arrays above). */
    private final ExclusivePublication[][] lanePublications;
    private final Subscription[][] laneSubscriptions;
    private final Image[][] laneImages;
    private final BufferClaim[][] laneClaims;
    /** Per lane and peer: the session id its PROOF named for the lane, 0 until the PROOF verified. */
    private final int[][] expectedSessions;
    private final boolean[] proofVerified;
    private final TransportCounters counters;
    /** Frame authentication: whether each peer's frames carry tags; then the state per lane and peer. */
    private final boolean[] authenticateFrames;
    private final FrameAuthenticationFilter filter;
    private final FrameAuthenticator[][] sendAuthenticators;
    private final FrameAuthenticator[][] receiveAuthenticators;
    private final long[][] nextSendSequence;
    private final long[][] nextReceiveSequence;
    private final int[][] claimedLength;
    /** Why a peer's authenticated stream cannot go on (frames missing), or null. */
    private final String[] streamBroken;
    /** The job-token handshake with every peer (one nonce for all of them). */
    private final PeerHandshake tokenHandshake;
    /** The nonce of the last PROOF that verified (handshake only). */
    private byte[] lastProofNonce;
    private final long jobHash;
    private final UnsafeBuffer control = new UnsafeBuffer(new byte[HANDSHAKE_LENGTH]);
    private final ControlHandler controlHandler = new ControlHandler();
    private final DataAdapter dataAdapter = new DataAdapter();
    private final ForeignImagePoller foreignPoller = new ForeignImagePoller();
    private final ForeignDataHandler foreignDataHandler = new ForeignDataHandler();
    /** Per peer: its stream's MTU less Aeron's data header and, if its frames are authenticated, the trailer. */
    private final int[] maxFrameLength;
    private final String description;
    private boolean handshakeDone;
    private boolean closed;

    private AeronTransport(final AeronTransportConfig config, final JobMediaDriver driver, final Client ipcClient,
                           final Client udpClient, final TransportCounters counters, final FrameAuthenticationFilter filter) {
        this.config = config;
        this.counters = counters;
        this.filter = filter;
        this.rank = config.rank();
        this.size = config.size();
        this.driver = driver;
        this.ipcClient = ipcClient;
        this.udpClient = udpClient;
        this.clientOf = new Client[size];
        this.authenticateFrames = new boolean[size];
        for (int peer = 0; peer < size; peer++) {
            if (peer != rank) {
                clientOf[peer] = config.isIpcPeer(peer) ? ipcClient : udpClient;
                authenticateFrames[peer] = config.authenticatesFramesOf(peer);
            }
        }
        this.publications = new ExclusivePublication[size];
        this.subscriptions = new Subscription[size];
        this.authenticated = new Image[size];
        this.answeredSessions = new IntArrayList[size];
        for (int peer = 0; peer < size; peer++) {
            answeredSessions[peer] = new IntArrayList();
        }
        this.byeReceived = new boolean[size];
        this.byePositions = new long[size][LANES];
        this.claims = new BufferClaim[size];
        this.lanePublications = new ExclusivePublication[LANES][];
        this.laneSubscriptions = new Subscription[LANES][];
        this.laneImages = new Image[LANES][];
        this.laneClaims = new BufferClaim[LANES][];
        this.lanePublications[0] = publications;
        this.laneSubscriptions[0] = subscriptions;
        this.laneImages[0] = authenticated;
        this.laneClaims[0] = claims;
        for (int lane = 1; lane < LANES; lane++) {
            lanePublications[lane] = new ExclusivePublication[size];
            laneSubscriptions[lane] = new Subscription[size];
            laneImages[lane] = new Image[size];
            laneClaims[lane] = new BufferClaim[size];
        }
        this.expectedSessions = new int[LANES][size];
        this.proofVerified = new boolean[size];
        this.tokenHandshake = new PeerHandshake(config.token(), config.jobId(), rank, size);
        this.jobHash = PeerHandshake.jobHash(config.jobId());
        // Aeron's data header takes 32 bytes of the MTU, the authentication trailer 24 more
        this.maxFrameLength = new int[size];
        for (int peer = 0; peer < size; peer++) {
            if (peer != rank) {
                maxFrameLength[peer] = config.mtuBytesOf(peer) - DataHeaderFlyweight.HEADER_LENGTH
                    - (authenticateFrames[peer] ? FrameAuthenticator.TRAILER_LENGTH : 0);
            }
        }
        this.sendAuthenticators = new FrameAuthenticator[LANES][size];
        this.receiveAuthenticators = new FrameAuthenticator[LANES][size];
        this.nextSendSequence = new long[LANES][size];
        this.nextReceiveSequence = new long[LANES][size];
        this.claimedLength = new int[LANES][size];
        this.streamBroken = new String[size];
        this.description = "aeron-" + config.media().name().toLowerCase(java.util.Locale.ROOT) + ":"
            + (ipcClient != null ? ipcClient.directory : "") + (ipcClient != null && udpClient != null ? "+" : "")
            + (udpClient != null ? udpClient.directory + "@" + config.endpoints().get(rank) : "");
    }

    /** One Aeron client and the driver it talks to: the node's shared one (IPC peers) or this rank's own (UDP peers). */
    private static final class Client implements AutoCloseable {
        final Aeron aeron;
        final String directory;
        final boolean udp;
        /** The client's first error (reported by Aeron on its conductor thread). */
        final AtomicReference<Throwable> error;

        private Client(final Aeron aeron, final String directory, final boolean udp, final AtomicReference<Throwable> error) {
            this.aeron = aeron;
            this.directory = directory;
            this.udp = udp;
            this.error = error;
        }

        static Client connect(final AeronTransportConfig config, final String directory, final boolean udp) {
            final AtomicReference<Throwable> error = new AtomicReference<>();
            try {
                return new Client(Aeron.connect(new Aeron.Context()
                    .aeronDirectoryName(directory)
                    .driverTimeoutMs(Math.max(1000, TimeUnit.NANOSECONDS.toMillis(config.connectTimeoutNs())))
                    .keepAliveIntervalNs(JobMediaDriver.livenessIntervalNs(config.failureBoundNs()))
                    .errorHandler(e -> {
                        if (error.compareAndSet(null, e)) {
                            System.err.println("moeflow transport: rank " + config.rank() + ": Aeron client error: " + e);
                        }
                    })), directory, udp, error);
            } catch (final RuntimeException e) {
                throw new TransportException("rank " + config.rank() + ": no Aeron media driver answered in " + directory + " ("
                    + e.getMessage() + "); " + (udp ? "set launchDriver, or start this rank's driver first"
                    : "the launcher (or node agent) must start the job's driver for this host first"), e);
            }
        }

        /** Why this client stopped working, or null while it works. */
        String failure() {
            final Throwable e = error.get();
            if (aeron.isClosed() || e instanceof io.aeron.exceptions.DriverTimeoutException) {
                return "this rank's Aeron client stopped (" + e + "); is the media driver in " + directory + " still running?";
            }
            return null;
        }

        @Override
        public void close() {
            CloseHelper.quietClose(aeron);
        }
    }

    /**
     * Connects to (or launches) the media driver, opens a stream to and from every peer and
     * authenticates every peer. Returns once every peer's stream is authenticated.
     *
     * @throws TransportException if the driver or a peer cannot be reached in {@code connectTimeoutNs}
     */
    public static AeronTransport connect(final AeronTransportConfig config) {
        final String ipcDirectory = config.ipcDirectory();
        final String udpDirectory = config.udpDirectory();
        JobMediaDriver driver = null;
        Client ipcClient = null;
        Client udpClient = null;
        AeronTransport transport = null;
        final TransportCounters counters = new TransportCounters();
        final FrameAuthenticationFilter filter = config.frameAuthentication() && config.launchDriver() && udpDirectory != null
            ? new FrameAuthenticationFilter(counters, config.mtuBytes() - DataHeaderFlyweight.HEADER_LENGTH) : null;
        try {
            if (config.launchDriver() && (udpDirectory != null || config.media() == AeronMedia.IPC)) {
                // UDP and HYBRID: this rank's own driver; IPC: the host's shared one (the node's, in HYBRID, is never ours)
                driver = JobMediaDriver.launch(udpDirectory != null ? udpDirectory : ipcDirectory, config.driverIdleMode(),
                    config.failureBoundNs(), filter, udpDirectory == null);
            }
            if (ipcDirectory != null) {
                ipcClient = Client.connect(config, ipcDirectory, false);
            }
            if (udpDirectory != null) {
                udpClient = Client.connect(config, udpDirectory, true);
            }
            transport = new AeronTransport(config, driver, ipcClient, udpClient, counters, filter);
            transport.open();
            transport.handshake();
            return transport;
        } catch (final RuntimeException e) {
            if (transport != null) {
                transport.closeResources();
            } else {
                CloseHelper.quietCloseAll(ipcClient, udpClient, driver);
            }
            throw e;
        }
    }

    private int streamId(final int lane, final int from, final int to) {
        return config.streamIdBase() + (lane * size + from) * size + to;
    }

    /** Opens every lane to and from every peer, through the client that reaches the peer. */
    private void open() {
        for (int lane = 0; lane < LANES; lane++) {
            for (int peer = 0; peer < size; peer++) {
                if (peer == rank) {
                    continue;
                }
                final boolean udp = clientOf[peer].udp;
                final String in = udp
                    ? new ChannelUriStringBuilder().media("udp").endpoint(config.endpoints().get(rank)).build()
                    : "aeron:ipc";
                laneSubscriptions[lane][peer] = clientOf[peer].aeron.addSubscription(in, streamId(lane, peer, rank));
            }
        }
        for (int lane = 0; lane < LANES; lane++) {
            final int term = lane == 0 ? Math.min(CONTROL_TERM_LENGTH_BYTES, config.termLengthBytes()) : config.termLengthBytes();
            for (int peer = 0; peer < size; peer++) {
                if (peer == rank) {
                    continue;
                }
                final int mtu = Math.min(config.mtuBytesOf(peer), term / 8);
                final boolean udp = clientOf[peer].udp;
                final ChannelUriStringBuilder out = new ChannelUriStringBuilder().media(udp ? "udp" : "ipc")
                    .termLength(term).mtu(mtu);
                if (udp) {
                    out.endpoint(config.endpoints().get(peer));
                }
                lanePublications[lane][peer] = clientOf[peer].aeron.addExclusivePublication(out.build(), streamId(lane, rank, peer));
                laneClaims[lane][peer] = new BufferClaim();
            }
        }
    }

    /** Binds the lanes of peers whose PROOF verified to the images it named, once those images exist. */
    private void resolveLaneImages() {
        for (int peer = 0; peer < size; peer++) {
            if (peer == rank || !proofVerified[peer]) {
                continue;
            }
            for (int lane = 1; lane < LANES; lane++) {
                if (laneImages[lane][peer] == null) {
                    laneImages[lane][peer] = laneSubscriptions[lane][peer].imageBySessionId(expectedSessions[lane][peer]);
                }
            }
        }
    }

    private void handshake() {
        final long start = System.nanoTime();
        final long deadline = start + config.connectTimeoutNs();
        long nextHello = start;
        while (!handshakeComplete()) {
            resolveLaneImages();
            final long now = System.nanoTime();
            if (now - deadline > 0) {
                throw new TransportException("rank " + rank + ": no authenticated connection with rank(s) " + pendingPeers()
                    + " within " + TimeUnit.NANOSECONDS.toMillis(config.connectTimeoutNs()) + " ms over " + description
                    + ": are they running, in job '" + config.jobId() + "', with the same job token and frameAuthentication="
                    + config.frameAuthentication() + "? (" + counters + ")");
            }
            if (now - nextHello >= 0) {
                for (int peer = 0; peer < size; peer++) {
                    if (peer != rank && !peerDone(peer) && publications[peer].isConnected()) {
                        sendHello(peer);
                    }
                }
                nextHello = now + HELLO_INTERVAL_NS;
            }
            int work = 0;
            for (int peer = 0; peer < size; peer++) {
                if (peer != rank) {
                    work += pollAllImages(peer);
                }
            }
            if (work == 0) {
                LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(1));
            }
        }
        handshakeDone = true;
    }

    /**
     * Done with a peer once its stream is authenticated and this rank has answered a HELLO from that
     * very stream (so the peer, which repeats its HELLO until answered, can authenticate this rank).
     */
    private boolean peerDone(final int peer) {
        final Image image = authenticated[peer];
        if (image == null || !answeredSessions[peer].containsInt(image.sessionId())) {
            return false;
        }
        for (int lane = 0; lane < LANES; lane++) {
            // every lane both ways: an image of the peer's stream here, and this rank's stream connected there
            if (laneImages[lane][peer] == null || !lanePublications[lane][peer].isConnected()) {
                return false;
            }
        }
        return true;
    }

    private boolean handshakeComplete() {
        for (int peer = 0; peer < size; peer++) {
            if (peer != rank && !peerDone(peer)) {
                return false;
            }
        }
        return true;
    }

    private List<Integer> pendingPeers() {
        final List<Integer> pending = new ArrayList<>();
        for (int peer = 0; peer < size; peer++) {
            if (peer != rank && !peerDone(peer)) {
                pending.add(peer);
            }
        }
        return pending;
    }

    private int pollAllImages(final int peer) {
        foreignPoller.peer = peer;
        foreignPoller.includeAuthenticated = !handshakeDone;
        foreignPoller.work = 0;
        foreignPoller.lane = 0;
        subscriptions[peer].forEachImage(foreignPoller);
        if (proofVerified[peer]) {
            // images of the data lanes other than the ones the PROOF named; before the PROOF verified,
            // the peer's genuine data image cannot be told apart, so nothing is drained
            for (int lane = 1; lane < LANES; lane++) {
                foreignPoller.lane = lane;
                laneSubscriptions[lane][peer].forEachImage(foreignPoller);
            }
        }
        return foreignPoller.work;
    }

    /** Polls the images of one peer's stream that the data path does not read (no allocation). */
    private final class ForeignImagePoller implements Consumer<Image> {
        int peer;
        int lane;
        boolean includeAuthenticated;
        int work;

        @Override
        public void accept(final Image image) {
            if (lane > 0) {
                if (image.sessionId() != expectedSessions[lane][peer]) {
                    work += image.controlledPoll(foreignDataHandler, 16);
                }
                return;
            }
            if (includeAuthenticated || image != authenticated[peer]) {
                controlHandler.peer = peer;
                work += image.controlledPoll(controlHandler, 16);
            }
        }
    }

    /** Frames on a data lane from an image its peer's PROOF did not name: dropped and counted. */
    private final class ForeignDataHandler implements ControlledFragmentHandler {
        @Override
        public Action onFragment(final DirectBuffer buffer, final int offset, final int length, final Header header) {
            counters.onUnauthenticatedFrame();
            return Action.CONTINUE;
        }
    }

    /** Handshake frames, and anything arriving on an image that is not (yet) the authenticated one. */
    private final class ControlHandler implements ControlledFragmentHandler {
        int peer;

        @Override
        public Action onFragment(final DirectBuffer buffer, final int offset, final int length, final Header header) {
            final int session = header.sessionId();
            final Image trusted = authenticated[peer];
            final boolean fromTrusted = trusted != null && trusted.sessionId() == session;
            if (!Wire.isWellFormed(buffer, offset, length)) {
                if (!fromTrusted) {
                    counters.onMalformedFrame();
                    return Action.CONTINUE;
                }
                return Action.ABORT; // the data path will count it
            }
            switch (Wire.kind(buffer, offset)) {
                case Wire.KIND_DATA:
                case Wire.KIND_ABORT:
                    if (fromTrusted) {
                        return Action.ABORT; // the peer is done with its handshake: leave its frames for the engine
                    }
                    counters.onUnauthenticatedFrame();
                    return Action.CONTINUE;
                case Wire.KIND_HELLO:
                    if (trusted != null && !fromTrusted) {
                        counters.onHandshakeRejected(); // a second claimant: the peer's stream is already authenticated
                    } else {
                        onHello(peer, buffer, offset, length, session);
                    }
                    return Action.CONTINUE;
                case Wire.KIND_PROOF:
                    if (!fromTrusted) {
                        if (!handshakeDone && trusted == null && verifyProof(peer, buffer, offset, length, session)) {
                            authenticated[peer] = subscriptions[peer].imageBySessionId(session);
                            proofVerified[peer] = true;
                            onAuthenticated(peer, session);
                        } else {
                            counters.onHandshakeRejected();
                        }
                    }
                    return Action.CONTINUE;
                case Wire.KIND_BYE:
                    if (fromTrusted) {
                        return Action.ABORT; // the data path checks and notes it
                    } else {
                        counters.onUnauthenticatedFrame();
                    }
                    return Action.CONTINUE;
                default:
                    counters.onMalformedFrame();
                    return Action.CONTINUE;
            }
        }
    }

    /** Reads the authenticated image of one peer for the engine; answers late HELLOs, notes BYE. */
    private final class DataAdapter implements ControlledFragmentHandler {
        FrameHandler handler;
        int peer;
        int lane;

        @Override
        public Action onFragment(final DirectBuffer buffer, final int offset, final int length, final Header header) {
            final boolean sealed = authenticateFrames[peer] && header.reservedValue() != 0;
            if (!sealed && lane == 0 && Wire.isWellFormed(buffer, offset, length)) {
                final byte kind = Wire.kind(buffer, offset);
                if (kind == Wire.KIND_HELLO) {
                    onHello(peer, buffer, offset, length, header.sessionId());
                    return Action.CONTINUE;
                }
                if (kind == Wire.KIND_PROOF) {
                    return Action.CONTINUE; // a duplicate of the proof that authenticated this image
                }
            }
            int frameLength = length;
            if (authenticateFrames[peer]) {
                if (!sealed) {
                    counters.onForgedFrame(); // only handshake frames may come without a tag
                    return Action.CONTINUE;
                }
                if ((filter == null || !clientOf[peer].udp) && !receiveAuthenticators[lane][peer].verify(buffer, offset, length,
                    FrameAuthenticationFilter.position(header.termId(), header.termOffset()))) {
                    counters.onForgedFrame();
                    return Action.CONTINUE;
                }
                final long sequence = FrameAuthenticator.sequence(buffer, offset, length);
                final long expected = nextReceiveSequence[lane][peer];
                if (sequence < expected) {
                    counters.onReplayedFrame();
                    return Action.CONTINUE;
                }
                if (sequence > expected) {
                    if (streamBroken[peer] == null) {
                        streamBroken[peer] = "authenticated frames #" + expected + ".." + (sequence - 1) + " from rank " + peer
                            + " on lane " + lane + " never arrived (a datagram forged on the wire took their place); the stream cannot go on";
                    }
                    return Action.ABORT;
                }
                frameLength = length - FrameAuthenticator.TRAILER_LENGTH;
            }
            if (lane == 0 && Wire.isWellFormed(buffer, offset, frameLength) && Wire.kind(buffer, offset) == Wire.KIND_BYE) {
                nextReceiveSequence[lane][peer]++;
                if (frameLength >= BYE_LENGTH) {
                    for (int l = 1; l < LANES; l++) {
                        byePositions[peer][l] = buffer.getLong(offset + Wire.HEADER_LENGTH + 8 * (l - 1));
                    }
                }
                byeReceived[peer] = true;
                return Action.BREAK;
            }
            final FrameAction action = handler.onFrame(buffer, offset, frameLength);
            if (action == FrameAction.ABORT) {
                return Action.ABORT; // left in the stream: its sequence number comes again
            }
            nextReceiveSequence[lane][peer]++;
            return action == FrameAction.CONTINUE ? Action.CONTINUE : Action.BREAK;
        }
    }

    /** Answers a HELLO from {@code peer} (arrived on {@code session}) with a PROOF, or counts it rejected. */
    private void onHello(final int peer, final DirectBuffer buffer, final int offset, final int length, final int session) {
        final byte[] proof = isHandshakeFrame(peer, buffer, offset, length)
            ? tokenHandshake.proof(peer, handshakeMessage(buffer, offset), bindingTo(peer)) : null;
        if (proof == null) {
            counters.onHandshakeRejected();
            return;
        }
        if (sendHandshake(Wire.KIND_PROOF, peer, proof) && !handshakeDone && !answeredSessions[peer].containsInt(session)) {
            answeredSessions[peer].addInt(session);
        }
    }

    /**
     * True if the PROOF from {@code peer} answers this rank's HELLO under the job token and binds the
     * image it arrived on ({@code session}) and this rank's frame-authentication setting; then notes
     * the sessions it names for the other lanes and the peer's nonce.
     */
    private boolean verifyProof(final int peer, final DirectBuffer buffer, final int offset, final int length,
                                final int session) {
        if (!isHandshakeFrame(peer, buffer, offset, length)) {
            return false;
        }
        final byte[] proof = handshakeMessage(buffer, offset);
        final byte[] binding = tokenHandshake.verify(peer, proof);
        if (binding == null || binding.length != BINDING_BYTES) {
            return false;
        }
        final ByteBuffer b = ByteBuffer.wrap(binding).order(ByteOrder.LITTLE_ENDIAN);
        if (b.get(0) != frameAuthenticationFlag(peer) || b.getInt(1) != session) {
            return false; // the peer disagrees on frame authentication, or the PROOF came on another stream than it names
        }
        for (int lane = 1; lane < LANES; lane++) {
            expectedSessions[lane][peer] = b.getInt(1 + 4 * lane);
        }
        lastProofNonce = PeerHandshake.nonceOf(proof);
        return true;
    }

    /**
     * The peer's stream is authenticated: derives this connection's frame keys, one per direction,
     * from the token, both nonces and each direction's session; over UDP the driver starts checking.
     */
    private void onAuthenticated(final int peer, final int session) {
        if (!authenticateFrames[peer]) {
            return;
        }
        final byte[] theirNonce = lastProofNonce;
        for (int lane = 0; lane < LANES; lane++) {
            final int theirSession = lane == 0 ? session : expectedSessions[lane][peer];
            final byte[] sendKey = FrameAuthenticator.deriveKey(config.token(), rank, peer, size, jobHash, tokenHandshake.nonce(),
                theirNonce, lanePublications[lane][peer].sessionId());
            final byte[] receiveKey = FrameAuthenticator.deriveKey(config.token(), peer, rank, size, jobHash, theirNonce,
                tokenHandshake.nonce(), theirSession);
            sendAuthenticators[lane][peer] = new FrameAuthenticator(sendKey, maxFrameLength[peer]);
            receiveAuthenticators[lane][peer] = new FrameAuthenticator(receiveKey, maxFrameLength[peer]);
            nextSendSequence[lane][peer] = 1;
            nextReceiveSequence[lane][peer] = 1;
            if (filter != null && clientOf[peer].udp) {
                filter.install(streamId(lane, peer, rank), theirSession, receiveKey);
            }
        }
    }

    /**
     * True if a HELLO or PROOF frame has the length of this transport's handshake and the peer's
     * frame-authentication setting (both sides must agree on it; the PROOF's binding repeats it under the MAC).
     */
    private boolean isHandshakeFrame(final int peer, final DirectBuffer buffer, final int offset, final int length) {
        return length == HANDSHAKE_LENGTH && buffer.getByte(offset + Wire.OFFSET_OP) == frameAuthenticationFlag(peer);
    }

    private byte frameAuthenticationFlag(final int peer) {
        return (byte) (authenticateFrames[peer] ? 1 : 0);
    }

    /** The {@link PeerHandshake} message inside a handshake frame. */
    private static byte[] handshakeMessage(final DirectBuffer buffer, final int offset) {
        final byte[] message = new byte[HANDSHAKE_LENGTH - Wire.HEADER_LENGTH];
        buffer.getBytes(offset + Wire.HEADER_LENGTH, message);
        return message;
    }

    /** What this rank's handshake with {@code peer} binds: its frame-authentication flag and its sessions to the peer, by lane. */
    private byte[] bindingTo(final int peer) {
        final ByteBuffer b = ByteBuffer.allocate(BINDING_BYTES).order(ByteOrder.LITTLE_ENDIAN).put(frameAuthenticationFlag(peer));
        for (int lane = 0; lane < LANES; lane++) {
            b.putInt(lanePublications[lane][peer].sessionId());
        }
        return b.array();
    }

    private void sendHello(final int peer) {
        sendHandshake(Wire.KIND_HELLO, peer, tokenHandshake.hello(peer, bindingTo(peer)));
    }

    /** Sends a {@link PeerHandshake} message to {@code peer} on the control lane, in a frame of {@code kind}. */
    private boolean sendHandshake(final byte kind, final int peer, final byte[] message) {
        Wire.putPreamble(control, 0, kind, frameAuthenticationFlag(peer));
        control.setMemory(4, Wire.HEADER_LENGTH - 4, (byte) 0);
        control.putBytes(Wire.HEADER_LENGTH, message);
        return offerControl(publications[peer], Wire.HEADER_LENGTH + message.length);
    }

    private boolean offerControl(final Publication pub, final int length) {
        for (int attempt = 0; attempt < 100; attempt++) {
            final long result = pub.offer(control, 0, length);
            if (result > 0) {
                return true;
            }
            if (result == Publication.CLOSED || result == Publication.MAX_POSITION_EXCEEDED || result == Publication.NOT_CONNECTED) {
                return false;
            }
            Thread.onSpinWait();
        }
        return false;
    }

    @Override
    public int rank() {
        return rank;
    }

    @Override
    public int size() {
        return size;
    }

    @Override
    public int maxFrameLength(final int peer) {
        return maxFrameLength[peer];
    }

    @Override
    public int lanes() {
        return LANES;
    }

    @Override
    public int tryClaim(final int peer, final int lane, final int lengthBytes) {
        final int trailer = authenticateFrames[peer] ? FrameAuthenticator.TRAILER_LENGTH : 0;
        final BufferClaim claim = laneClaims[lane][peer];
        final long result = lanePublications[lane][peer].tryClaim(lengthBytes + trailer, claim);
        if (result > 0) {
            claimedLength[lane][peer] = lengthBytes;
            return claim.offset();
        }
        if (result == Publication.BACK_PRESSURED || result == Publication.ADMIN_ACTION) {
            return BACK_PRESSURED;
        }
        return result == Publication.NOT_CONNECTED ? NOT_CONNECTED : CLOSED;
    }

    @Override
    public MutableDirectBuffer claimBuffer(final int peer, final int lane) {
        return laneClaims[lane][peer].buffer();
    }

    @Override
    public void commit(final int peer, final int lane) {
        final BufferClaim claim = laneClaims[lane][peer];
        if (authenticateFrames[peer]) {
            final MutableDirectBuffer frame = claim.buffer(); // index 0: Aeron's data header, filled in by tryClaim
            final long sequence = nextSendSequence[lane][peer]++;
            claim.reservedValue(sequence); // marks the frame as authenticated for the receiving driver
            sendAuthenticators[lane][peer].seal(frame, claim.offset(), claimedLength[lane][peer],
                FrameAuthenticationFilter.position(frame.getInt(DataHeaderFlyweight.TERM_ID_FIELD_OFFSET),
                    frame.getInt(DataHeaderFlyweight.TERM_OFFSET_FIELD_OFFSET)), sequence);
        }
        claim.commit();
    }

    @Override
    public int poll(final int peer, final int lane, final FrameHandler handler, final int frameLimit) {
        final Image image = laneImages[lane][peer];
        dataAdapter.handler = handler;
        dataAdapter.peer = peer;
        dataAdapter.lane = lane;
        return image.controlledPoll(dataAdapter, frameLimit);
    }

    @Override
    public String peerLost(final int peer) {
        final String clientFailure = clientOf[peer].failure();
        if (clientFailure != null) {
            return clientFailure;
        }
        if (streamBroken[peer] != null) {
            return streamBroken[peer];
        }
        if (hasExited(peer)) {
            return "rank " + peer + " closed its communicator while this rank still expects data from it";
        }
        for (int lane = 0; lane < LANES; lane++) {
            final Image image = laneImages[lane][peer];
            if (image == null) {
                return "rank " + peer + " never authenticated";
            }
            if (image.isClosed() || image.isEndOfStream()) {
                return "the stream from rank " + peer + " closed (did its process exit or get killed?)";
            }
            if (!lanePublications[lane][peer].isConnected()) {
                return "rank " + peer + " stopped receiving (did its process exit or get killed?)";
            }
        }
        return null;
    }

    @Override
    public String localFailure() {
        final String ipcFailure = ipcClient == null ? null : ipcClient.failure();
        return ipcFailure != null || udpClient == null ? ipcFailure : udpClient.failure();
    }

    @Override
    public PeerFailureException.Reason peerState(final int peer) {
        if (streamBroken[peer] != null) {
            return PeerFailureException.Reason.DISCONNECTED; // frames missing from the stream: it cannot go on
        }
        if (hasExited(peer)) {
            return PeerFailureException.Reason.EXITED;
        }
        return peerLost(peer) == null ? null : PeerFailureException.Reason.DISCONNECTED;
    }

    /**
     * The peer said BYE and everything it sent before on the data lanes has been consumed (the BYE
     * travels on the control lane, which is not ordered with the others: until then its last data
     * may still be on the way, over UDP even being retransmitted).
     */
    private boolean hasExited(final int peer) {
        if (!byeReceived[peer]) {
            return false;
        }
        for (int lane = 1; lane < LANES; lane++) {
            if (laneImages[lane][peer].position() < byePositions[peer][lane]) {
                return false;
            }
        }
        return true;
    }

    @Override
    public int doHousekeeping() {
        int work = 0;
        for (int peer = 0; peer < size; peer++) {
            if (peer != rank && hasForeignImages(peer)) {
                work += pollAllImages(peer);
            }
        }
        return work;
    }

    private boolean hasForeignImages(final int peer) {
        for (int lane = 0; lane < LANES; lane++) {
            if (laneSubscriptions[lane][peer].imageCount() > 1) {
                return true;
            }
        }
        return false;
    }

    @Override
    public TransportCounters counters() {
        return counters;
    }

    @Override
    public String describe() {
        return description;
    }

    /**
     * Says BYE to every peer and waits (up to {@code closeTimeoutNs}) until every live peer said BYE
     * too, so that no rank tears down streams a peer still reads; then closes the client and the
     * embedded driver, if any.
     */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        try {
            final boolean clientOpen = ipcClient != null && !ipcClient.aeron.isClosed() || udpClient != null && !udpClient.aeron.isClosed();
            if (handshakeDone && clientOpen) {
                sayGoodbye();
            }
        } finally {
            closeResources();
        }
    }

    private void sayGoodbye() {
        final long deadline = System.nanoTime() + config.closeTimeoutNs();
        final boolean[] sent = new boolean[size];
        final FrameHandler leftover = (buffer, offset, length) -> {
            counters.onUnexpectedFrame(); // data nobody asked for: the peers' programs disagree
            return FrameAction.CONTINUE;
        };
        while (System.nanoTime() - deadline < 0) {
            boolean waiting = false;
            for (int peer = 0; peer < size; peer++) {
                if (peer == rank) {
                    continue;
                }
                if (!sent[peer]) {
                    final int result = tryClaim(peer, CONTROL_LANE, BYE_LENGTH);
                    if (result >= 0) {
                        final MutableDirectBuffer buffer = claimBuffer(peer, CONTROL_LANE);
                        buffer.setMemory(result, BYE_LENGTH, (byte) 0);
                        Wire.putPreamble(buffer, result, Wire.KIND_BYE, (byte) 0);
                        buffer.putInt(result + BYE_FIELD_FROM, rank);
                        for (int lane = 1; lane < LANES; lane++) {
                            buffer.putLong(result + Wire.HEADER_LENGTH + 8 * (lane - 1), lanePublications[lane][peer].position());
                        }
                        commit(peer, CONTROL_LANE);
                    }
                    sent[peer] = result >= 0 || result == NOT_CONNECTED || result == CLOSED;
                    waiting |= !sent[peer];
                }
                final Image image = authenticated[peer];
                if (!byeReceived[peer] && !image.isClosed() && !image.isEndOfStream()) {
                    poll(peer, CONTROL_LANE, leftover, 16);
                    waiting |= !byeReceived[peer];
                }
            }
            if (!waiting) {
                break;
            }
            LockSupport.parkNanos(TimeUnit.MICROSECONDS.toNanos(200));
        }
        if (udpClient != null) {
            // give this rank's driver a moment to put the last BYEs on the wire before it stops
            LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(20));
        }
    }

    private void closeResources() {
        CloseHelper.quietCloseAll(ipcClient, udpClient, driver);
    }

    @Override
    public String toString() {
        return "AeronTransport[rank " + rank + " of " + size + ", " + description + "]";
    }
}
