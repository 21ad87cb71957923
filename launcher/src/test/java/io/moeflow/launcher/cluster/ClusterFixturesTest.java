package io.moeflow.launcher.cluster;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** The cluster fixtures themselves: hosts in namespaces reached over ssh, and a one-host Slurm cluster that runs tasks. */
@Tag("slow")
@Timeout(value = 180, unit = TimeUnit.SECONDS)
class ClusterFixturesTest {
    @TempDir
    Path dir;

    @Test
    void shouldReachEveryNamespaceOverSshAtItsOwnAddress() throws Exception {
        final String bridge;
        final List<String> namespaces;
        try (NetnsCluster hosts = NetnsCluster.start(2, dir.resolve("net"))) {
            bridge = hosts.bridgeAddress();
            namespaces = List.of(hosts.namespace(0), hosts.namespace(1));
            for (int i = 0; i < hosts.size(); i++) {
                assertEquals(hosts.address(i), hosts.ssh(i, "hostname -I").strip(), "host " + i + "'s only address");
            }
            assertEquals("key-on-stdin", ClusterTests.run(30, null, "/bin/sh", "-c", "echo key-on-stdin | " + hosts.sshCommandLine() + " "
                + hosts.address(1) + " 'read k; echo $k'").check(List.of("ssh")).out().strip(), "stdin reaches the remote command");
            assertEquals(List.of(), hosts.leftovers(0), "nothing but sshd runs in the namespace after the sessions");
        }
        final String links = ClusterTests.check(10, null, "/usr/sbin/ip", "-o", "addr");
        assertFalse(links.contains(" " + bridge + "/"), "the bridge is gone: " + links);
        final String left = ClusterTests.check(10, null, "/usr/sbin/ip", "netns", "list");
        for (final String ns : namespaces) {
            assertFalse(left.contains(ns), ns + " is gone: " + left);
        }
    }

    @Test
    void shouldRunTwoSlurmTasksWithProcIds0And1() throws Exception {
        final List<Long> before = ProcessHandle.current().children().map(ProcessHandle::pid).toList();
        final List<ProcessHandle> daemons;
        try (SlurmCluster slurm = SlurmCluster.start(dir.resolve("slurm"))) {
            final ClusterTests.Result r = slurm.run(60, "/usr/bin/srun", "-N1", "-n2", "/bin/sh", "-c",
                "echo task $SLURM_PROCID of $SLURM_NTASKS local $SLURM_LOCALID node $SLURM_NODEID of $SLURM_JOB_NUM_NODES "
                    + "on $SLURM_JOB_NODELIST step $SLURM_STEP_ID");
            assertEquals(0, r.code(), r.out());
            final String expectedTail = "of 1 on " + slurm.nodeName() + " step 0";
            assertTrue(r.out().contains("task 0 of 2 local 0 node 0 " + expectedTail), r.out());
            assertTrue(r.out().contains("task 1 of 2 local 1 node 0 " + expectedTail), r.out());
            daemons = ProcessHandle.current().children().filter(p -> !before.contains(p.pid())).toList();
            assertEquals(3, daemons.size(), "munged, slurmctld, slurmd: " + daemons);
        }
        assertTrue(daemons.stream().noneMatch(ProcessHandle::isAlive), "the daemons are stopped");
    }

    /** What SlurmEnvironment relies on: an sbatch script's own shell has no step id, the tasks srun starts in it have one. */
    @Test
    void shouldGiveStepIdsToSrunTasksButNotToTheBatchShell() throws Exception {
        try (SlurmCluster slurm = SlurmCluster.start(dir.resolve("slurm"))) {
            final Path script = dir.resolve("job.sbatch");
            final Path out = dir.resolve("job.out");
            Files.writeString(script, String.join("\n", "#!/bin/sh", "#SBATCH --ntasks=2", "#SBATCH --output=" + out,
                "echo batch step=${SLURM_STEP_ID-none} stepid=${SLURM_STEPID-none} procid=${SLURM_PROCID-none}",
                "srun /bin/sh -c 'echo task $SLURM_PROCID step=$SLURM_STEP_ID'", ""));
            final ClusterTests.Result r = slurm.run(90, "/usr/bin/sbatch", "--wait", script.toString());
            final String printed = Files.readString(out);
            assertEquals(0, r.code(), r.out() + printed);
            assertTrue(printed.contains("batch step=none stepid=none procid=0"), printed);
            assertTrue(printed.contains("task 0 step=0") && printed.contains("task 1 step=0"), printed);
        }
    }
}
