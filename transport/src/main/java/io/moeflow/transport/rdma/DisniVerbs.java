package io.moeflow.transport.rdma;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.LinkedList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import com.ibm.disni.RdmaEndpoint;
import com.ibm.disni.RdmaEndpointGroup;
import com.ibm.disni.RdmaPassiveEndpointGroup;
import com.ibm.disni.RdmaServerEndpoint;
import com.ibm.disni.verbs.IbvMr;
import com.ibm.disni.verbs.IbvRecvWR;
import com.ibm.disni.verbs.IbvSendWR;
import com.ibm.disni.verbs.IbvSge;
import com.ibm.disni.verbs.IbvWC;
import com.ibm.disni.verbs.RdmaCmId;
import com.ibm.disni.verbs.SVCPollCq;
import com.ibm.disni.verbs.SVCPostRecv;
import com.ibm.disni.verbs.SVCPostSend;

import org.agrona.BufferUtil;
import org.agrona.collections.Long2ObjectHashMap;

/**
 * {@link Verbs} on DiSNI 2.1 (RDMA CM + libibverbs through libdisni). <b>Not run on hardware yet</b>:
 * it compiles against DiSNI 2.1 and follows its examples, but the machines this was written on have
 * no RDMA device (docs/rdma.md says how to test it with Soft-RoCE or a NIC).
 *
 * <p>Every rank binds a server endpoint at its own address (from the rendezvous); the lower rank of a
 * pair accepts, the higher connects and first SENDs its rank (4 bytes) so the acceptor knows which
 * peer an accepted endpoint is. A passive endpoint group: completions are polled by the caller
 * ({@link #poll}), never by a DiSNI thread. Constructing one loads libdisni: callers probe first
 * ({@link RdmaSupport}), since a failed load poisons DiSNI's native class for the JVM's lifetime.
 *
 * <p>Memory is registered once ({@link #register}, called by the transport at construction) and
 * posts allocate nothing once each kind of work request was prepared ({@code Qp}); polling reuses
 * one DiSNI poll call and one array of completions per queue pair.
 */
public final class DisniVerbs implements Verbs {
    private static final long IDENTITY_WR = 0x7fL << 56;
    private static final int ACCESS = IbvMr.IBV_ACCESS_LOCAL_WRITE | IbvMr.IBV_ACCESS_REMOTE_WRITE;

    private final int rank;
    private final List<InetSocketAddress> addresses;
    private final RdmaPassiveEndpointGroup<Endpoint> group;
    private final RdmaServerEndpoint<Endpoint> server;
    private final Endpoint[] endpoints;
    private final Qp[] qps;
    private final List<IbvMr> registered = new ArrayList<>();
    private final ByteBuffer identity = BufferUtil.allocateDirectAligned(64, 64);
    private final IbvWC[] wcs = new IbvWC[64];
    private final List<SVCPollCq> polls = new ArrayList<>();
    private MemoryRegion identityRegion;

    /** One endpoint (queue pair) of the group. */
    static final class Endpoint extends RdmaEndpoint {
        Endpoint(final RdmaEndpointGroup<? extends RdmaEndpoint> group, final RdmaCmId id, final boolean serverSide)
            throws IOException {
            super(group, id, serverSide);
        }
    }

    /**
     * A DiSNI queue pair; every post is signaled. Posting allocates nothing once warm: each work
     * request is prepared once as a DiSNI stateful call (native memory holding the request) and
     * re-executed for every later post, with only its id, addresses, length and keys rewritten in
     * place. A send is prepared per opcode and immediate (DiSNI cannot change a prepared request's
     * opcode or immediate: the transport's immediates depend on kind and lane only), a receive per
     * work id (the transport reposts each receive buffer with the same id, address and length; DiSNI
     * cannot change a prepared receive at all, so another buffer under the same id is prepared anew).
     */
    private static final class Qp implements QueuePair {
        private final Endpoint endpoint;
        private final int peer;
        private final Long2ObjectHashMap<SVCPostSend> sends = new Long2ObjectHashMap<>();
        private final Long2ObjectHashMap<PreparedRecv> receives = new Long2ObjectHashMap<>();

        Qp(final Endpoint endpoint, final int peer) {
            this.endpoint = endpoint;
            this.peer = peer;
        }

        @Override
        public int peer() {
            return peer;
        }

        @Override
        public boolean postRecv(final long workId, final MemoryRegion region, final int offset, final int lengthBytes) {
            final long address = region.address() + offset;
            try {
                PreparedRecv prepared = receives.get(workId);
                if (prepared == null || !prepared.holds(address, lengthBytes, region.localKey())) {
                    if (prepared != null) {
                        prepared.call.free();
                    }
                    prepared = new PreparedRecv(endpoint.postRecv(List.of(recvWr(workId, address, lengthBytes, region.localKey()))),
                        address, lengthBytes, region.localKey());
                    receives.put(workId, prepared);
                }
                prepared.call.execute();
                return true;
            } catch (final IOException e) {
                return false;
            }
        }

        @Override
        public boolean postSend(final long workId, final MemoryRegion region, final int offset, final int lengthBytes,
                                final int immediate) {
            return post(IbvSendWR.IBV_WR_SEND_WITH_IMM, immediate, workId, region, offset, lengthBytes, 0, 0);
        }

        @Override
        public boolean postWrite(final long workId, final MemoryRegion region, final int offset, final int lengthBytes,
                                 final long remoteAddress, final int remoteKey, final boolean withImmediate, final int immediate) {
            return withImmediate
                ? post(IbvSendWR.IBV_WR_RDMA_WRITE_WITH_IMM, immediate, workId, region, offset, lengthBytes, remoteAddress, remoteKey)
                : post(IbvSendWR.IBV_WR_RDMA_WRITE, 0, workId, region, offset, lengthBytes, remoteAddress, remoteKey);
        }

        /** Posts from the call prepared for this opcode and immediate (preparing it on first use). */
        private boolean post(final int opcode, final int immediate, final long workId, final MemoryRegion region, final int offset,
                             final int lengthBytes, final long remoteAddress, final int remoteKey) {
            final long key = (long) opcode << 32 | (immediate & 0xffffffffL);
            try {
                SVCPostSend call = sends.get(key);
                if (call == null) {
                    call = endpoint.postSend(List.of(sendWr(0, region.address() + offset, lengthBytes, region.localKey(), opcode,
                        immediate)));
                    sends.put(key, call);
                }
                final SVCPostSend.SendWRMod wr = call.getWrMod(0);
                wr.setWr_id(workId);
                final SVCPostSend.SgeMod sge = wr.getSgeMod(0);
                sge.setAddr(region.address() + offset);
                sge.setLength(lengthBytes);
                sge.setLkey(region.localKey());
                if (opcode != IbvSendWR.IBV_WR_SEND_WITH_IMM) {
                    wr.getRdmaMod().setRemote_addr(remoteAddress);
                    wr.getRdmaMod().setRkey(remoteKey);
                }
                call.execute();
                return true;
            } catch (final IOException e) {
                return false;
            }
        }

        @Override
        public boolean connected() {
            return endpoint.isConnected() && !endpoint.isClosed();
        }

        @Override
        public void close() {
            sends.values().forEach(SVCPostSend::free);
            sends.clear();
            receives.values().forEach(r -> r.call.free());
            receives.clear();
            closeEndpoint(endpoint);
        }
    }

    /** A receive prepared once and the buffer it names. */
    private record PreparedRecv(SVCPostRecv call, long address, int lengthBytes, int localKey) {
        boolean holds(final long otherAddress, final int otherLength, final int otherKey) {
            return address == otherAddress && lengthBytes == otherLength && localKey == otherKey;
        }
    }

    private static IbvRecvWR recvWr(final long workId, final long address, final int lengthBytes, final int localKey) {
        final IbvRecvWR wr = new IbvRecvWR();
        wr.setWr_id(workId);
        wr.setSg_list(sge(address, lengthBytes, localKey));
        wr.setNum_sge(1);
        return wr;
    }

    private static LinkedList<IbvSge> sge(final long address, final int lengthBytes, final int localKey) {
        final IbvSge sge = new IbvSge();
        sge.setAddr(address);
        sge.setLength(lengthBytes);
        sge.setLkey(localKey);
        final LinkedList<IbvSge> list = new LinkedList<>();
        list.add(sge);
        return list;
    }

    private static IbvSendWR sendWr(final long workId, final long address, final int lengthBytes, final int localKey,
                                    final int opcode, final int immediate) {
        final IbvSendWR wr = new IbvSendWR();
        wr.setWr_id(workId);
        wr.setSg_list(sge(address, lengthBytes, localKey));
        wr.setNum_sge(1);
        wr.setOpcode(opcode);
        wr.setSend_flags(IbvSendWR.IBV_SEND_SIGNALED);
        wr.setImm_data(immediate);
        return wr;
    }

    /** Posts one work request of connection setup (allocates: setup only, never per message). */
    private static boolean postOnce(final Endpoint ep, final IbvSendWR wr) {
        try {
            ep.postSend(List.of(wr)).execute().free();
            return true;
        } catch (final IOException e) {
            return false;
        }
    }

    private static boolean postRecvOnce(final Endpoint ep, final IbvRecvWR wr) {
        try {
            ep.postRecv(List.of(wr)).execute().free();
            return true;
        } catch (final IOException e) {
            return false;
        }
    }

    /**
     * Opens the endpoint group and binds this rank's server endpoint. Loads libdisni: throws
     * {@link LinkageError} if it is missing (call {@link RdmaSupport#probe} first).
     *
     * @param addresses  every rank's RDMA address (an IP of its RDMA-capable interface and a port)
     * @param maxWorkRequests  per queue pair; at least the transport's posted receives and send slots
     */
    public DisniVerbs(final int rank, final List<InetSocketAddress> addresses, final int maxWorkRequests,
                      final long timeoutNs) throws IOException {
        this.rank = rank;
        this.addresses = List.copyOf(addresses);
        this.endpoints = new Endpoint[addresses.size()];
        this.qps = new Qp[addresses.size()];
        for (int i = 0; i < wcs.length; i++) {
            wcs[i] = new IbvWC();
        }
        final int timeoutMs = (int) Math.min(Integer.MAX_VALUE, TimeUnit.NANOSECONDS.toMillis(timeoutNs));
        group = new RdmaPassiveEndpointGroup<>(timeoutMs, maxWorkRequests, 1, 2 * maxWorkRequests);
        group.init((id, serverSide) -> new Endpoint(group, id, serverSide));
        server = group.createServerEndpoint();
        try {
            server.bind(addresses.get(rank), addresses.size());
        } catch (final Exception e) {
            throw new IOException("could not bind the RDMA endpoint at " + addresses.get(rank) + ": " + e.getMessage(), e);
        }
        identityRegion = register(identity);
    }

    @Override
    public MemoryRegion register(final ByteBuffer direct) throws IOException {
        final IbvMr mr = server.getPd().regMr(direct, ACCESS).execute().free().getMr();
        registered.add(mr);
        return new MemoryRegion(direct, mr.getAddr(), mr.getLkey(), mr.getRkey());
    }

    @Override
    public QueuePair connect(final int peer, final long timeoutNs) throws IOException {
        final long deadline = System.nanoTime() + timeoutNs;
        if (peer > rank) {
            while (endpoints[peer] == null) {
                if (System.nanoTime() - deadline > 0) {
                    throw new IOException("rank " + peer + " did not connect within " + timeoutNs / 1_000_000 + " ms");
                }
                final Endpoint ep = server.accept();
                final int from = receiveIdentity(ep, deadline);
                if (from <= rank || from >= endpoints.length || endpoints[from] != null) {
                    closeEndpoint(ep); // not a rank of this job that should connect here
                    continue;
                }
                endpoints[from] = ep;
            }
        } else {
            final Endpoint ep = group.createEndpoint();
            try {
                ep.connect(addresses.get(peer), (int) Math.max(1, TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime())));
            } catch (final Exception e) {
                throw new IOException("could not connect to rank " + peer + " at " + addresses.get(peer) + ": " + e.getMessage(), e);
            }
            identity.putInt(0, rank);
            final IbvSendWR wr = sendWr(IDENTITY_WR, identityRegion.address(), 4, identityRegion.localKey(), IbvSendWR.IBV_WR_SEND, 0);
            if (!postOnce(ep, wr) || waitCompletion(ep, deadline) == null) {
                throw new IOException("could not tell rank " + peer + " who is connecting");
            }
            endpoints[peer] = ep;
        }
        qps[peer] = new Qp(endpoints[peer], peer);
        return qps[peer];
    }

    private int receiveIdentity(final Endpoint ep, final long deadline) throws IOException {
        if (!postRecvOnce(ep, recvWr(IDENTITY_WR, identityRegion.address() + 8, 4, identityRegion.localKey()))) {
            return -1;
        }
        final IbvWC wc = waitCompletion(ep, deadline);
        return wc == null || wc.getStatus() != 0 ? -1 : identity.getInt(8);
    }

    private IbvWC waitCompletion(final Endpoint ep, final long deadline) throws IOException {
        final IbvWC[] one = {new IbvWC()};
        final SVCPollCq poll = ep.getCqProvider().getCQ().poll(one, 1);
        try {
            while (System.nanoTime() - deadline < 0) {
                if (poll.execute().getPolls() > 0) {
                    return one[0].getStatus() == 0 ? one[0] : null;
                }
                Thread.onSpinWait();
            }
            return null;
        } finally {
            poll.free();
        }
    }

    @Override
    public int poll(final Completion[] out) {
        int n = 0;
        for (int peer = 0; peer < endpoints.length && n < out.length; peer++) {
            final Endpoint ep = endpoints[peer];
            if (ep == null || ep.isClosed()) {
                continue;
            }
            try {
                final SVCPollCq poll = pollOf(peer, ep);
                final int got = poll.execute().getPolls();
                for (int i = 0; i < got && n < out.length; i++) {
                    final IbvWC wc = wcs[i];
                    final Completion c = out[n++];
                    c.workId = wc.getWr_id();
                    c.peer = peer;
                    c.status = wc.getStatus();
                    c.byteLength = wc.getByte_len();
                    c.immediate = wc.getImm_data();
                    c.opcode = opcode(wc.getOpcode());
                }
            } catch (final IOException e) {
                // a CQ that cannot be polled any more belongs to a closed endpoint: the transport sees it disconnected
            }
        }
        return n;
    }

    /** One reusable poll call per endpoint (DiSNI's stateful verb calls are meant to be reused). */
    private SVCPollCq pollOf(final int peer, final Endpoint ep) throws IOException {
        while (polls.size() <= peer) {
            polls.add(null);
        }
        SVCPollCq poll = polls.get(peer);
        if (poll == null) {
            poll = ep.getCqProvider().getCQ().poll(wcs, wcs.length);
            polls.set(peer, poll);
        }
        return poll;
    }

    private static int opcode(final int wcOpcode) {
        if (wcOpcode == IbvWC.IbvWcOpcode.IBV_WC_RECV.getOpcode()) {
            return Completion.RECV;
        }
        if (wcOpcode == IbvWC.IbvWcOpcode.IBV_WC_RECV_RDMA_WITH_IMM.getOpcode()) {
            return Completion.RECV_WRITE_IMMEDIATE;
        }
        if (wcOpcode == IbvWC.IbvWcOpcode.IBV_WC_RDMA_WRITE.getOpcode()) {
            return Completion.WRITE;
        }
        return Completion.SEND;
    }

    @Override
    public String describe() {
        return "disni rdma://" + addresses.get(rank).getHostString() + ":" + addresses.get(rank).getPort();
    }

    private static void closeEndpoint(final Endpoint ep) {
        try {
            ep.close();
        } catch (final IOException e) {
            // closing anyway: the peer sees the disconnect
        } catch (final InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    @Override
    public void close() {
        for (final SVCPollCq poll : polls) {
            if (poll != null) {
                poll.free();
            }
        }
        polls.clear();
        for (int peer = 0; peer < endpoints.length; peer++) {
            if (qps[peer] != null) {
                qps[peer].close(); // its prepared calls, then its endpoint
            } else if (endpoints[peer] != null) {
                closeEndpoint(endpoints[peer]);
            }
        }
        for (final IbvMr mr : registered) {
            try {
                mr.deregMr().execute().free();
            } catch (final IOException e) {
                // the device context goes away with the group anyway
            }
        }
        registered.clear();
        try {
            server.close();
            group.close();
        } catch (final IOException e) {
            // nothing more to release
        } catch (final InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
