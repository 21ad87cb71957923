package io.moeflow.transport.aeron;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.security.SecureRandom;
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
import io.moeflow.transport.JobToken;
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
 * Frames are at most one MTU, so every frame is one Aeron fragment, written in place with
 * {@code tryClaim} and read in place from the log buffer.
 *
 * <p><b>Authentication.</b> On connect every rank sends each peer a HELLO with a fresh random nonce,
 * answers every valid HELLO with a PROOF = HMAC-SHA256(job token, both ranks, job, both nonces,
 * the answering publication's session id), and accepts the stream of a peer only from the image whose
 * PROOF carries its own nonce and verifies. The handshake runs on the control lane; the PROOF also
 * names (under the MAC) the session ids of the answering rank's publications on the other lanes,
 * so each lane accepts exactly one image per peer too. Only those images are read afterwards; frames of any other
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
    private static final int HELLO_LENGTH = 40;
    /** Lanes per ordered pair of ranks: control, urgent, three bulk. */
    public static final int LANES = 5;
    /** The control lane carries handshake, BYE and ABORT frames only: small terms. */
    private static final int CONTROL_TERM_LENGTH_BYTES = 64 * 1024;
    private static final int PROOF_LENGTH = 88 + 4 * (LANES - 1);
    /** BYE: the header, then the position this rank's stream to the peer reached on each data lane. */
    private static final int BYE_LENGTH = Wire.HEADER_LENGTH + 8 * (LANES - 1);
    private static final int FIELD_FROM = 4;
    private static final int FIELD_TO = 8;
    private static final int FIELD_SIZE = 12;
    private static final int FIELD_JOB = 16;
    private static final int FIELD_NONCE = 24;
    private static final int FIELD_ECHO = 40;
    private static final int FIELD_MAC = 56;
    /** PROOF: session ids of the answering rank's publications on lanes 1.. to the asking rank. */
    private static final int FIELD_SESSIONS = 88;
    private static final int NONCE_BYTES = 16;
    private static final int MAC_BYTES = 32;
    private static final long HELLO_INTERVAL_NS = TimeUnit.MILLISECONDS.toNanos(50);
    private static final byte[] MAC_LABEL = "moeflow-proof-v1".getBytes(StandardCharsets.US_ASCII);

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
    /** The nonce of the last PROOF that verified (handshake only). */
    private byte[] lastProofNonce;
    private final byte[] nonce = new byte[NONCE_BYTES];
    private final long jobHash;
    private final UnsafeBuffer control = new UnsafeBuffer(new byte[PROOF_LENGTH]);
    private final ControlHandler controlHandler = new ControlHandler();
    private final DataAdapter dataAdapter = new DataAdapter();
    private final ForeignImagePoller foreignPoller = new ForeignImagePoller();
    private final ForeignDataHandler foreignDataHandler = new ForeignDataHandler();
    private final int maxFrameLength;
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
        this.jobHash = jobHash(config.jobId());
        new SecureRandom().nextBytes(nonce);
        // Aeron's data header takes 32 bytes of the MTU, the authentication trailer 24 more (one length for every peer)
        this.maxFrameLength = config.mtuBytes() - DataHeaderFlyweight.HEADER_LENGTH
            - (config.frameAuthentication() ? FrameAuthenticator.TRAILER_LENGTH : 0);
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
            final int mtu = Math.min(config.mtuBytes(), term / 8);
            for (int peer = 0; peer < size; peer++) {
                if (peer == rank) {
                    continue;
                }
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
                            for (int lane = 1; lane < LANES; lane++) {
                                expectedSessions[lane][peer] = buffer.getInt(offset + FIELD_SESSIONS + 4 * (lane - 1));
                            }
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

    private void onHello(final int peer, final DirectBuffer buffer, final int offset, final int length, final int session) {
        if (!isHandshakeFor(peer, buffer, offset, length, HELLO_LENGTH)) {
            counters.onHandshakeRejected();
            return;
        }
        final byte[] theirNonce = new byte[NONCE_BYTES];
        buffer.getBytes(offset + FIELD_NONCE, theirNonce);
        final ExclusivePublication pub = publications[peer];
        final int[] sessions = new int[LANES - 1];
        for (int lane = 1; lane < LANES; lane++) {
            sessions[lane - 1] = lanePublications[lane][peer].sessionId();
        }
        final byte[] mac = config.token().mac(macInput(rank, peer, nonce, theirNonce, pub.sessionId(), sessions));
        putHandshake(Wire.KIND_PROOF, peer);
        control.putBytes(FIELD_ECHO, theirNonce);
        control.putBytes(FIELD_MAC, mac);
        for (int i = 0; i < sessions.length; i++) {
            control.putInt(FIELD_SESSIONS + 4 * i, sessions[i]);
        }
        if (offerControl(pub, PROOF_LENGTH) && !handshakeDone && !answeredSessions[peer].containsInt(session)) {
            answeredSessions[peer].addInt(session);
        }
    }

    private boolean verifyProof(final int peer, final DirectBuffer buffer, final int offset, final int length,
                                final int session) {
        if (!isHandshakeFor(peer, buffer, offset, length, PROOF_LENGTH)) {
            return false;
        }
        final byte[] echo = new byte[NONCE_BYTES];
        buffer.getBytes(offset + FIELD_ECHO, echo);
        if (!MessageDigest.isEqual(echo, nonce)) {
            return false; // an answer to somebody else's challenge (or a replay)
        }
        final byte[] theirNonce = new byte[NONCE_BYTES];
        buffer.getBytes(offset + FIELD_NONCE, theirNonce);
        final byte[] mac = new byte[MAC_BYTES];
        buffer.getBytes(offset + FIELD_MAC, mac);
        lastProofNonce = theirNonce;
        final int[] sessions = new int[LANES - 1];
        for (int i = 0; i < sessions.length; i++) {
            sessions[i] = buffer.getInt(offset + FIELD_SESSIONS + 4 * i);
        }
        return JobToken.macEquals(mac, config.token().mac(macInput(peer, rank, theirNonce, nonce, session, sessions)));
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
            final byte[] sendKey = FrameAuthenticator.deriveKey(config.token(), rank, peer, size, jobHash, nonce, theirNonce,
                lanePublications[lane][peer].sessionId());
            final byte[] receiveKey = FrameAuthenticator.deriveKey(config.token(), peer, rank, size, jobHash, theirNonce, nonce,
                theirSession);
            sendAuthenticators[lane][peer] = new FrameAuthenticator(sendKey, maxFrameLength);
            receiveAuthenticators[lane][peer] = new FrameAuthenticator(receiveKey, maxFrameLength);
            nextSendSequence[lane][peer] = 1;
            nextReceiveSequence[lane][peer] = 1;
            if (filter != null && clientOf[peer].udp) {
                filter.install(streamId(lane, peer, rank), theirSession, receiveKey);
            }
        }
    }

    /** True if a HELLO or PROOF of the expected length claims to come from {@code peer} to this rank, in this job. */
    private boolean isHandshakeFor(final int peer, final DirectBuffer buffer, final int offset, final int length,
                                   final int expectedLength) {
        return length == expectedLength && buffer.getInt(offset + FIELD_FROM) == peer && buffer.getInt(offset + FIELD_TO) == rank
            && buffer.getInt(offset + FIELD_SIZE) == size && buffer.getLong(offset + FIELD_JOB) == jobHash
            && buffer.getByte(offset + Wire.OFFSET_OP) == (authenticateFrames[peer] ? 1 : 0);
    }

    private byte[] macInput(final int from, final int to, final byte[] fromNonce, final byte[] toNonce, final int session,
                            final int[] laneSessions) {
        final ByteBuffer b = ByteBuffer.allocate(MAC_LABEL.length + 4 * 4 + 8 + 2 * NONCE_BYTES + 4 * laneSessions.length)
            .order(ByteOrder.LITTLE_ENDIAN);
        b.put(MAC_LABEL).putInt(from).putInt(to).putInt(size).putLong(jobHash).put(fromNonce).put(toNonce).putInt(session);
        for (final int laneSession : laneSessions) {
            b.putInt(laneSession);
        }
        return b.array();
    }

    private void sendHello(final int peer) {
        putHandshake(Wire.KIND_HELLO, peer);
        offerControl(publications[peer], HELLO_LENGTH);
    }

    /** The fields HELLO and PROOF share: who to whom, in which job, with this rank's nonce. */
    private void putHandshake(final byte kind, final int peer) {
        control.setMemory(0, PROOF_LENGTH, (byte) 0);
        Wire.putPreamble(control, 0, kind, (byte) (authenticateFrames[peer] ? 1 : 0)); // both sides must agree on it
        control.putInt(FIELD_FROM, rank);
        control.putInt(FIELD_TO, peer);
        control.putInt(FIELD_SIZE, size);
        control.putLong(FIELD_JOB, jobHash);
        control.putBytes(FIELD_NONCE, nonce);
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

    private static long jobHash(final String jobId) {
        try {
            return ByteBuffer.wrap(MessageDigest.getInstance("SHA-256").digest(jobId.getBytes(StandardCharsets.UTF_8))).getLong();
        } catch (final NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is not available in this JVM", e);
        }
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
    public int maxFrameLength() {
        return maxFrameLength;
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
                        buffer.putInt(result + FIELD_FROM, rank);
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
