package io.moeflow.transport;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;

import org.junit.jupiter.api.Test;

/** The shared job-token handshake: only a holder of the token answering this very challenge is trusted. */
class PeerHandshakeTest {
    private static final byte[] BINDING_0 = {1, 2, 3};
    private static final byte[] BINDING_1 = {9, 8, 7, 6};

    @Test
    void shouldTrustAPeerWithTheTokenAndReturnItsBinding() {
        final JobToken token = JobToken.generate();
        final PeerHandshake a = new PeerHandshake(token, "job", 0, 2);
        final PeerHandshake b = new PeerHandshake(token, "job", 1, 2);
        final byte[] proofFromB = b.proof(0, a.hello(1, BINDING_0), BINDING_1);
        final byte[] proofFromA = a.proof(1, b.hello(0, BINDING_1), BINDING_0);
        assertArrayEquals(BINDING_1, a.verify(1, proofFromB));
        assertArrayEquals(BINDING_0, b.verify(0, proofFromA));
        // both sides know both nonces afterwards (Aeron derives its frame keys from them)
        assertArrayEquals(b.nonce(), PeerHandshake.nonceOf(proofFromB));
        assertArrayEquals(a.nonce(), PeerHandshake.nonceOf(proofFromA));
        assertFalse(java.util.Arrays.equals(a.nonce(), b.nonce()), "fresh nonces");
    }

    @Test
    void shouldRejectAWrongTokenAReplayAnotherJobAndATamperedBinding() {
        final JobToken token = JobToken.generate();
        final PeerHandshake a = new PeerHandshake(token, "job", 0, 2);
        final byte[] hello = a.hello(1, BINDING_0);
        assertNull(a.verify(1, new PeerHandshake(JobToken.generate(), "job", 1, 2).proof(0, hello, BINDING_1)), "wrong token");
        assertNull(new PeerHandshake(token, "other-job", 1, 2).proof(0, hello, BINDING_1), "a HELLO of another job");
        assertNull(new PeerHandshake(token, "job", 1, 3).proof(0, hello, BINDING_1), "another job size");
        final byte[] genuine = new PeerHandshake(token, "job", 1, 2).proof(0, hello, BINDING_1);
        assertNotNull(a.verify(1, genuine));
        assertNull(new PeerHandshake(token, "job", 0, 2).verify(1, genuine), "a replay to a fresh challenge");
        assertNull(a.verify(2, genuine), "claimed by another rank");
        final byte[] tampered = genuine.clone();
        tampered[tampered.length - 1] ^= 1; // the address/key binding changed on the way
        assertNull(a.verify(1, tampered));
    }
}
