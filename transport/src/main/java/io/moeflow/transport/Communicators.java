package io.moeflow.transport;

/** Creates the job-wide communicator of this process over a back-end {@link Transport}. */
public final class Communicators {
    private Communicators() {
    }

    /**
     * The communicator of all ranks of the transport's job (group id 0). Closing it closes the transport.
     */
    public static Communicator create(final Transport transport, final CommunicatorConfig config) {
        if (transport == null || config == null) {
            throw new IllegalArgumentException("transport=" + transport + " config=" + config + ": both are required");
        }
        final int[] members = new int[transport.size()];
        for (int i = 0; i < members.length; i++) {
            members[i] = i;
        }
        return new GroupCommunicator(new Engine(transport, config), new Group(0, members, transport.rank()), true);
    }
}
