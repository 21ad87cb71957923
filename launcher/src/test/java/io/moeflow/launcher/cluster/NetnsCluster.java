package io.moeflow.launcher.cluster;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.TimeUnit;

/**
 * K emulated hosts on this machine, for tests: K network namespaces joined by a bridge in the root namespace
 * (the bridge holds 10.a.b.1, host i holds 10.a.b.(i+2)), each running Debian's sshd on its own address. The
 * host and client keys are generated in a temporary directory, root logs in by key only (no PAM); the ssh
 * command of {@link #sshCommandLine()} trusts exactly that host key. Names carry a random suffix so parallel
 * tests do not collide; {@link #close()} kills what runs in the namespaces (by pid) and removes them and the bridge.
 */
public final class NetnsCluster implements AutoCloseable {
    private static final SecureRandom RANDOM = new SecureRandom();
    private static final String IP = "/usr/sbin/ip";
    private static final String SSHD = "/usr/sbin/sshd";

    private final Path dir;
    private final String suffix;
    private final String subnet;
    private final List<String> namespaces = new ArrayList<>();
    private final List<Process> sshds = new ArrayList<>();
    private boolean bridgeCreated;

    private NetnsCluster(final Path dir, final String suffix, final String subnet) {
        this.dir = dir;
        this.suffix = suffix;
        this.subnet = subnet;
    }

    /**
     * Builds the hosts and waits until each sshd answers. Skips the test (or fails it, see {@link ClusterTests#REQUIRED})
     * when this machine cannot: not root, no sshd/ssh/ip, or namespaces not allowed.
     *
     * @param hosts K, in [1, 200]
     * @param dir   a directory of the test for keys, configs and logs (deleted by the test framework)
     */
    public static NetnsCluster start(final int hosts, final Path dir) throws IOException {
        ClusterTests.requireRootAnd(IP, SSHD, "/usr/bin/ssh", "/usr/bin/ssh-keygen");
        if (hosts < 1 || hosts > 200) {
            throw new IllegalArgumentException("hosts " + hosts + ": must be in [1, 200]");
        }
        final String suffix = String.format(Locale.ROOT, "%06x", RANDOM.nextInt(1 << 24));
        final String used = ClusterTests.check(10, null, IP, "-4", "-o", "addr");
        String subnet;
        do {
            subnet = "10." + (64 + RANDOM.nextInt(180)) + "." + RANDOM.nextInt(256) + ".";
        } while (used.contains(" " + subnet));
        final NetnsCluster cluster = new NetnsCluster(Files.createDirectories(dir), suffix, subnet);
        try {
            cluster.build(hosts);
            return cluster;
        } catch (final RuntimeException | IOException | Error e) { // Error: a failed requirement under MOEFLOW_REQUIRE_CLUSTER_TESTS
            cluster.close();
            throw e;
        }
    }

    private void build(final int hosts) throws IOException {
        final ClusterTests.Result bridge = ClusterTests.run(10, null, IP, "link", "add", bridge(), "type", "bridge");
        ClusterTests.require(bridge.code() == 0, "cannot create a bridge here: " + bridge.out().strip());
        bridgeCreated = true;
        ip("addr", "add", bridgeAddress() + "/24", "dev", bridge());
        ip("link", "set", bridge(), "up");
        for (int i = 0; i < hosts; i++) {
            final String ns = "moeflow-" + suffix + "-" + i;
            final ClusterTests.Result created = ClusterTests.run(10, null, IP, "netns", "add", ns);
            ClusterTests.require(created.code() == 0, "cannot create a network namespace here: " + created.out().strip());
            namespaces.add(ns);
            ip("-n", ns, "link", "set", "lo", "up");
            final String outer = "mf" + suffix + "r" + i;
            ip("link", "add", outer, "type", "veth", "peer", "name", "eth0", "netns", ns);
            ip("link", "set", outer, "master", bridge());
            ip("link", "set", outer, "up");
            ip("-n", ns, "addr", "add", address(i) + "/24", "dev", "eth0");
            ip("-n", ns, "link", "set", "eth0", "up");
        }
        writeSshFiles();
        for (int i = 0; i < hosts; i++) {
            final Path config = dir.resolve("sshd_config-" + i);
            Files.writeString(config, String.join("\n", "ListenAddress " + address(i), "Port 22", "HostKey " + dir.resolve("host_key"),
                "AuthorizedKeysFile " + dir.resolve("authorized_keys"), "PermitRootLogin prohibit-password",
                "PubkeyAuthentication yes", "PasswordAuthentication no", "KbdInteractiveAuthentication no", "UsePAM no",
                "StrictModes no", "PidFile none", "MaxStartups 100", "MaxSessions 100", "") + "\n");
            sshds.add(new ProcessBuilder(IP, "netns", "exec", namespaces.get(i), SSHD, "-D", "-e", "-f", config.toString())
                .redirectErrorStream(true).redirectOutput(dir.resolve("sshd-" + i + ".log").toFile()).start());
        }
        for (int i = 0; i < hosts; i++) {
            awaitSsh(i);
        }
    }

    private void writeSshFiles() throws IOException {
        // sshd needs its privilege separation directory (Debian's service unit creates it at boot).
        final Path privsep = Path.of("/run/sshd");
        if (!Files.isDirectory(privsep)) {
            Files.createDirectories(privsep, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwxr-xr-x")));
        }
        ClusterTests.check(30, null, "/usr/bin/ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "moeflow-test-host", "-f",
            dir.resolve("host_key").toString());
        ClusterTests.check(30, null, "/usr/bin/ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "moeflow-test-client", "-f",
            dir.resolve("client_key").toString());
        Files.copy(dir.resolve("client_key.pub"), dir.resolve("authorized_keys"));
        Files.writeString(dir.resolve("known_hosts"), subnet + "* " + Files.readString(dir.resolve("host_key.pub")).strip() + "\n");
        Files.writeString(sshConfig(), String.join("\n", "Host *", "  User root", "  IdentityFile " + dir.resolve("client_key"),
            "  IdentitiesOnly yes", "  UserKnownHostsFile " + dir.resolve("known_hosts"), "  GlobalKnownHostsFile /dev/null",
            "  StrictHostKeyChecking yes", "  BatchMode yes", "  ConnectTimeout 10", "  LogLevel ERROR", "") + "\n");
    }

    private void awaitSsh(final int i) {
        final long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        ClusterTests.Result last;
        do {
            if (!sshds.get(i).isAlive()) {
                throw new IllegalStateException("sshd of " + namespaces.get(i) + " exited: " + log(i));
            }
            last = ClusterTests.run(20, null, "/usr/bin/ssh", "-F", sshConfig().toString(), address(i), "true");
            if (last.code() == 0) {
                return;
            }
            try {
                Thread.sleep(200);
            } catch (final InterruptedException e) {
                Thread.currentThread().interrupt();
                break;
            }
        } while (System.nanoTime() < deadline);
        throw new IllegalStateException("ssh to " + address(i) + " (" + namespaces.get(i) + ") did not work within 30 s: "
            + last.out().strip() + "; sshd log: " + log(i));
    }

    private String log(final int i) {
        try {
            return Files.readString(dir.resolve("sshd-" + i + ".log")).strip();
        } catch (final IOException e) {
            return "(no log)";
        }
    }

    private void ip(final String... args) {
        final String[] command = new String[args.length + 1];
        command[0] = IP;
        System.arraycopy(args, 0, command, 1, args.length);
        ClusterTests.check(20, null, command);
    }

    private String bridge() {
        return "mf" + suffix + "br";
    }

    /** Number of hosts. */
    public int size() {
        return namespaces.size();
    }

    /** The address of host i (in its namespace). */
    public String address(final int i) {
        return subnet + (i + 2);
    }

    /** The bridge's address in the root namespace: where processes of this namespace are reached from the hosts. */
    public String bridgeAddress() {
        return subnet + "1";
    }

    /** The network namespace of host i. */
    public String namespace(final int i) {
        return namespaces.get(i);
    }

    /** The ssh client configuration trusting the hosts' key and logging in with the test's key. */
    public Path sshConfig() {
        return dir.resolve("ssh_config");
    }

    /** The ssh command that reaches the hosts, for {@code --ssh-command}. */
    public String sshCommandLine() {
        return "/usr/bin/ssh -F " + sshConfig();
    }

    /** Runs a shell command on host i over ssh and returns its output; fails when it exits non-zero. */
    public String ssh(final int i, final String command) {
        return ClusterTests.check(60, null, "/usr/bin/ssh", "-F", sshConfig().toString(), address(i), command);
    }

    /** The pids of the processes in host i's namespace (its sshd included). */
    public List<Long> pids(final int i) {
        final List<Long> pids = new ArrayList<>();
        for (final String line : ClusterTests.check(20, null, IP, "netns", "pids", namespace(i)).split("\n")) {
            if (!line.isBlank()) {
                pids.add(Long.parseLong(line.strip()));
            }
        }
        return pids;
    }

    /** The pid of host i's sshd. */
    public long sshdPid(final int i) {
        return sshds.get(i).pid();
    }

    /** The pids in host i's namespace other than its sshd's listener: what a job left behind. */
    public List<Long> leftovers(final int i) {
        final List<Long> pids = new ArrayList<>(pids(i));
        pids.remove(sshdPid(i));
        return pids;
    }

    @Override
    public void close() {
        for (int i = 0; i < namespaces.size(); i++) {
            try {
                for (final long pid : pids(i)) {
                    ProcessHandle.of(pid).ifPresent(ProcessHandle::destroyForcibly);
                }
            } catch (final RuntimeException e) {
                // the namespace may be half made; deleting it below is what matters
            }
        }
        for (final Process sshd : sshds) {
            ClusterTests.stop(sshd.toHandle(), 5);
        }
        for (final String ns : namespaces) {
            ClusterTests.run(20, null, IP, "netns", "del", ns);
        }
        if (bridgeCreated) {
            ClusterTests.run(20, null, IP, "link", "del", bridge());
        }
    }
}
