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

import org.agrona.BufferUtil;

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
 * <p>Known gap: posts allocate their work-request objects (DiSNI's reusable {@code SVCPostSend}
 * would avoid it); measure before relying on it in a hot loop.
 */
public final class DisniVerbs implements Verbs {
    private static final long IDENTITY_WR = 0x7fL << 56;
    private static final int ACCESS = IbvMr.IBV_ACCESS_LOCAL_WRITE | IbvMr.IBV_ACCESS_REMOTE_WRITE;

    private final int rank;
    private final List<InetSocketAddress> addresses;
    private final RdmaPassiveEndpointGroup<Endpoint> group;
    private final RdmaServerEndpoint<Endpoint> server;
    private final Endpoint[] endpoints;
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

    /** A DiSNI queue pair; every post is signaled. */
    private static final class Qp implements QueuePair {
        private final Endpoint endpoint;
        private final int peer;

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
            final IbvRecvWR wr = new IbvRecvWR();
            wr.setWr_id(workId);
            wr.setSg_list(sge(region, offset, lengthBytes));
            wr.setNum_sge(1);
            final List<IbvRecvWR> list = new ArrayList<>(1);
            list.add(wr);
            try {
                endpoint.postRecv(list).execute().free();
                return true;
            } catch (final IOException e) {
                return false;
            }
        }

        @Override
        public boolean postSend(final long workId, final MemoryRegion region, final int offset, final int lengthBytes,
                                final int immediate) {
            final IbvSendWR wr = sendWr(workId, region, offset, lengthBytes, IbvSendWR.IBV_WR_SEND_WITH_IMM, immediate);
            return post(wr);
        }

        @Override
        public boolean postWrite(final long workId, final MemoryRegion region, final int offset, final int lengthBytes,
                                 final long remoteAddress, final int remoteKey, final boolean withImmediate, final int immediate) {
            final IbvSendWR wr = sendWr(workId, region, offset, lengthBytes,
                withImmediate ? IbvSendWR.IBV_WR_RDMA_WRITE_WITH_IMM : IbvSendWR.IBV_WR_RDMA_WRITE, immediate);
            wr.getRdma().setRemote_addr(remoteAddress);
            wr.getRdma().setRkey(remoteKey);
            return post(wr);
        }

        private boolean post(final IbvSendWR wr) {
            final List<IbvSendWR> list = new ArrayList<>(1);
            list.add(wr);
            try {
                endpoint.postSend(list).execute().free();
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
            try {
                endpoint.close();
            } catch (final IOException e) {
                // closing anyway: the peer sees the disconnect
            } catch (final InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }

    private static LinkedList<IbvSge> sge(final MemoryRegion region, final int offset, final int lengthBytes) {
        final IbvSge sge = new IbvSge();
        sge.setAddr(region.address() + offset);
        sge.setLength(lengthBytes);
        sge.setLkey(region.localKey());
        final LinkedList<IbvSge> list = new LinkedList<>();
        list.add(sge);
        return list;
    }

    private static IbvSendWR sendWr(final long workId, final MemoryRegion region, final int offset, final int lengthBytes,
                                    final int opcode, final int immediate) {
        final IbvSendWR wr = new IbvSendWR();
        wr.setWr_id(workId);
        wr.setSg_list(sge(region, offset, lengthBytes));
        wr.setNum_sge(1);
        wr.setOpcode(opcode);
        wr.setSend_flags(IbvSendWR.IBV_SEND_SIGNALED);
        wr.setImm_data(immediate);
        return wr;
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
                    closeQuietly(ep); // not a rank of this job that should connect here
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
            final IbvSendWR wr = sendWr(IDENTITY_WR, identityRegion, 0, 4, IbvSendWR.IBV_WR_SEND, 0);
            if (!new Qp(ep, peer).post(wr) || waitCompletion(ep, deadline) == null) {
                throw new IOException("could not tell rank " + peer + " who is connecting");
            }
            endpoints[peer] = ep;
        }
        return new Qp(endpoints[peer], peer);
    }

    private int receiveIdentity(final Endpoint ep, final long deadline) throws IOException {
        if (!new Qp(ep, -1).postRecv(IDENTITY_WR, identityRegion, 8, 4)) {
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

    private static void closeQuietly(final Endpoint ep) {
        new Qp(ep, -1).close();
    }

    @Override
    public void close() {
        for (final SVCPollCq poll : polls) {
            if (poll != null) {
                poll.free();
            }
        }
        polls.clear();
        for (final Endpoint ep : endpoints) {
            if (ep != null) {
                closeQuietly(ep);
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
