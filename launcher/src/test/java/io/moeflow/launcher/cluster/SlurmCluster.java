package io.moeflow.launcher.cluster;

import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.UnknownHostException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;

/**
 * A one-host Slurm cluster for tests, from Debian's slurm-wlm and munge: a munge key and a minimal slurm.conf for
 * this host (its hardware as {@code slurmd -C} reports it, free ports, all state in a temporary directory), then
 * munged, slurmctld and slurmd in the foreground as root. Clients (srun, sbatch, sinfo) find it through
 * {@link #env()} ({@code SLURM_CONF}). {@link #close()} cancels its jobs and stops the daemons by pid.
 */
public final class SlurmCluster implements AutoCloseable {
    private static final String MUNGED = "/usr/sbin/munged";
    private static final String SLURMCTLD = "/usr/sbin/slurmctld";
    private static final String SLURMD = "/usr/sbin/slurmd";
    private static final List<String> CLIENTS = List.of("/usr/bin/srun", "/usr/bin/sbatch", "/usr/bin/sinfo", "/usr/bin/squeue",
        "/usr/bin/scancel");

    private final Path dir;
    private final String nodeName;
    private final List<Process> daemons = new ArrayList<>();

    private SlurmCluster(final Path dir, final String nodeName) {
        this.dir = dir;
        this.nodeName = nodeName;
    }

    /**
     * Starts the daemons and waits until sinfo shows the node idle. Skips the test (or fails it, see
     * {@link ClusterTests#REQUIRED}) when this machine cannot: not root, Slurm or munge not installed, or a host name
     * that does not resolve.
     *
     * @param dir a directory of the test (short: munge's socket path must stay under 108 bytes)
     */
    public static SlurmCluster start(final Path dir) throws IOException {
        final List<String> tools = new ArrayList<>(List.of(MUNGED, SLURMCTLD, SLURMD));
        tools.addAll(CLIENTS);
        ClusterTests.requireRootAnd(tools.toArray(new String[0]));
        final String hardware = ClusterTests.check(30, null, SLURMD, "-C").lines().filter(l -> l.startsWith("NodeName=")).findFirst()
            .orElseThrow(() -> new IllegalStateException("slurmd -C printed no NodeName= line"));
        final String nodeName = hardware.split("\\s+")[0].substring("NodeName=".length());
        boolean resolves;
        try {
            InetAddress.getByName(nodeName);
            resolves = true;
        } catch (final UnknownHostException e) {
            resolves = false;
        }
        ClusterTests.require(resolves, "this host's name " + nodeName + " does not resolve (add it to /etc/hosts): Slurm's node list "
            + "names it");
        final SlurmCluster cluster = new SlurmCluster(Files.createDirectories(dir), nodeName);
        try {
            cluster.configure(hardware);
            cluster.startDaemons();
            cluster.awaitIdle();
            return cluster;
        } catch (final RuntimeException | IOException | Error e) { // Error: a failed requirement under MOEFLOW_REQUIRE_CLUSTER_TESTS
            cluster.close();
            throw e;
        }
    }

    private void configure(final String hardware) throws IOException {
        final Path munge = Files.createDirectories(dir.resolve("munge"));
        final byte[] key = new byte[1024];
        new SecureRandom().nextBytes(key);
        Files.write(munge.resolve("munge.key"), key);
        Files.setPosixFilePermissions(munge.resolve("munge.key"), PosixFilePermissions.fromString("r--------"));
        for (final String sub : List.of("state", "spool", "log")) {
            Files.createDirectories(dir.resolve(sub));
        }
        Files.writeString(dir.resolve("plugstack.conf"), ""); // no SPANK plugins of the system's Slurm
        final int[] ports = freePorts(2);
        Files.writeString(conf(), String.join("\n",
            "ClusterName=moeflowtest",
            "SlurmctldHost=" + nodeName,
            "SlurmctldPort=" + ports[0],
            "SlurmdPort=" + ports[1],
            "SlurmUser=root",
            "SlurmdUser=root",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            "AuthInfo=socket=" + mungeSocket(),
            "StateSaveLocation=" + dir.resolve("state"),
            "SlurmdSpoolDir=" + dir.resolve("spool"),
            "SlurmctldPidFile=" + dir.resolve("slurmctld.pid"),
            "SlurmdPidFile=" + dir.resolve("slurmd.pid"),
            "SlurmctldLogFile=" + dir.resolve("log/slurmctld.log"),
            "SlurmdLogFile=" + dir.resolve("log/slurmd.log"),
            "PlugStackConfig=" + dir.resolve("plugstack.conf"),
            "MailProg=/bin/true",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "JobAcctGatherType=jobacct_gather/none",
            "AccountingStorageType=accounting_storage/none",
            "SchedulerType=sched/builtin",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core",
            "MpiDefault=none",
            "ReturnToService=2",
            "KillWait=5",
            hardware + " State=UNKNOWN",
            "PartitionName=test Nodes=" + nodeName + " Default=YES MaxTime=INFINITE State=UP",
            ""));
    }

    private static int[] freePorts(final int n) throws IOException {
        final List<ServerSocket> sockets = new ArrayList<>();
        try {
            final int[] ports = new int[n];
            for (int i = 0; i < n; i++) {
                final ServerSocket s = new ServerSocket(0);
                sockets.add(s);
                ports[i] = s.getLocalPort();
            }
            return ports;
        } finally {
            for (final ServerSocket s : sockets) {
                s.close();
            }
        }
    }

    private void startDaemons() throws IOException {
        final Path munge = dir.resolve("munge");
        daemon("munged", MUNGED, "--foreground", "--force", "--socket=" + mungeSocket(), "--key-file=" + munge.resolve("munge.key"),
            "--pid-file=" + munge.resolve("munged.pid"), "--seed-file=" + munge.resolve("munged.seed"),
            "--log-file=" + dir.resolve("log/munged.log"));
        awaitFile(mungeSocket(), "munged's socket");
        daemon("slurmctld", SLURMCTLD, "-D", "-f", conf().toString());
        daemon("slurmd", SLURMD, "-D", "-f", conf().toString());
    }

    private void daemon(final String name, final String... command) throws IOException {
        daemons.add(new ProcessBuilder(command).redirectErrorStream(true).redirectOutput(dir.resolve("log/" + name + ".out").toFile())
            .start());
    }

    private void awaitFile(final Path file, final String what) {
        await(() -> Files.exists(file), 30, what + " " + file + " to appear");
    }

    private void awaitIdle() {
        await(() -> {
            for (final Process d : daemons) {
                if (!d.isAlive()) {
                    throw new IllegalStateException(d.info().command().orElse("a Slurm daemon") + " exited: see " + dir.resolve("log"));
                }
            }
            final ClusterTests.Result r = ClusterTests.run(20, env(), "/usr/bin/sinfo", "-h", "-N", "-o", "%t");
            return r.code() == 0 && r.out().strip().equals("idle");
        }, 60, "sinfo to show " + nodeName + " idle");
    }

    private static void await(final BooleanSupplier condition, final long seconds, final String what) {
        final long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                throw new IllegalStateException("waited " + seconds + " s for " + what);
            }
            try {
                Thread.sleep(250);
            } catch (final InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("interrupted waiting for " + what, e);
            }
        }
    }

    private Path mungeSocket() {
        return dir.resolve("munge/munge.socket");
    }

    /** The slurm.conf of this cluster. */
    public Path conf() {
        return dir.resolve("slurm.conf");
    }

    /** The environment a Slurm client needs to talk to this cluster. */
    public Map<String, String> env() {
        return Map.of("SLURM_CONF", conf().toString());
    }

    /** The one node's name (this host's name, as in SLURM_JOB_NODELIST). */
    public String nodeName() {
        return nodeName;
    }

    /** Where the daemons log. */
    public Path logs() {
        return dir.resolve("log");
    }

    /** A client command (srun, sbatch, ...) set up for this cluster. */
    public ProcessBuilder command(final String... command) {
        final ProcessBuilder pb = new ProcessBuilder(command);
        pb.environment().putAll(env());
        return pb;
    }

    /** Runs a client command to its end and returns its result. */
    public ClusterTests.Result run(final long timeoutSeconds, final String... command) {
        return ClusterTests.run(timeoutSeconds, env(), command);
    }

    @Override
    public void close() {
        if (daemons.size() == 3 && daemons.stream().allMatch(Process::isAlive)) {
            // Jobs first, so no job step outlives its slurmd; bounded, the daemons are stopped anyway.
            ClusterTests.run(20, env(), "/usr/bin/scancel", "--full", "--user=root");
            try {
                await(() -> ClusterTests.run(20, env(), "/usr/bin/squeue", "-h").out().isBlank(), 30, "the jobs to end");
            } catch (final IllegalStateException e) {
                // stop the daemons anyway
            }
        }
        for (int i = daemons.size() - 1; i >= 0; i--) {
            ClusterTests.stop(daemons.get(i).toHandle(), 10);
        }
    }
}
