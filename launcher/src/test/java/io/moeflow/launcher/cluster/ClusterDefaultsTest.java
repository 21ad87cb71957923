package io.moeflow.launcher.cluster;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

import org.junit.jupiter.api.Test;

/** Slurm and Kubernetes detection from injected environments. */
class ClusterDefaultsTest {
    /** What srun gave task 1 of `srun -N2 -n2` (names as on a real cluster). */
    private static Map<String, String> slurmTask(final int procId) {
        final Map<String, String> env = new HashMap<>();
        env.put("SLURM_JOB_ID", "123456");
        env.put("SLURM_STEP_ID", "0");
        env.put("SLURM_PROCID", Integer.toString(procId));
        env.put("SLURM_NTASKS", "2");
        env.put("SLURM_LOCALID", "0");
        env.put("SLURM_NODEID", Integer.toString(procId));
        env.put("SLURM_JOB_NUM_NODES", "2");
        env.put("SLURM_JOB_NODELIST", "gpu[07-08]");
        return env;
    }

    @Test
    void shouldExpandSlurmHostlists() {
        assertEquals(List.of("node01", "node02", "node03", "node7", "gpu5"), SlurmHostlist.expand("node[01-03,7],gpu5"));
        assertEquals(List.of("vm"), SlurmHostlist.expand("vm"));
        assertEquals(List.of("n8", "n9", "n10"), SlurmHostlist.expand("n[8-10]"));
        assertEquals(List.of("n098", "n099", "n100"), SlurmHostlist.expand("n[098-100]"));
        assertEquals(List.of("r1n1", "r1n2", "r2n1", "r2n2", "x-3"), SlurmHostlist.expand("r[1-2]n[1-2],x-3"));
        for (final String bad : List.of("n[1-", "n]1[", "n[3-1]", "n[a-b]", "n[]", "a,,b", "n[[1]]", "n[1-2-3]")) {
            final IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> SlurmHostlist.expand(bad), bad);
            assertTrue(e.getMessage().startsWith("SLURM_JOB_NODELIST '" + bad + "': "), e.getMessage());
        }
    }

    @Test
    void shouldTakeNodeRankAndMasterFromASlurmTask() {
        final ClusterDefaults d = ClusterDefaults.detect(slurmTask(1), null, null).orElseThrow();
        assertEquals(new ClusterDefaults(d.detected(), 2, 1, "gpu07", 20000 + 3456, "slurm-123456"), d);
        assertTrue(d.detected().startsWith("Slurm job 123456: task 1 of 2"), d.detected());
    }

    @Test
    void shouldGiveEveryTaskTheSameMasterAndPort() {
        final ClusterDefaults zero = ClusterDefaults.detect(slurmTask(0), null, null).orElseThrow();
        final ClusterDefaults one = ClusterDefaults.detect(slurmTask(1), null, null).orElseThrow();
        assertEquals(zero.masterAddr() + ":" + zero.masterPort() + " " + zero.runName(),
            one.masterAddr() + ":" + one.masterPort() + " " + one.runName());
        assertEquals(0, zero.nodeRank());
    }

    @Test
    void shouldAllowTwoTasksOnOneHost() {
        final Map<String, String> env = slurmTask(1);
        env.put("SLURM_LOCALID", "1");
        env.put("SLURM_NODEID", "0");
        env.put("SLURM_JOB_NUM_NODES", "1");
        env.put("SLURM_JOB_NODELIST", "vm");
        assertEquals(new ClusterDefaults(ClusterDefaults.detect(env, null, null).orElseThrow().detected(), 2, 1, "vm", 23456,
            "slurm-123456"), ClusterDefaults.detect(env, null, null).orElseThrow());
    }

    @Test
    void shouldIgnoreTheBatchScriptsOwnShellAndRefuseBrokenSlurmVariables() {
        final Map<String, String> batch = slurmTask(0);
        batch.remove("SLURM_STEP_ID");
        assertEquals(Optional.empty(), ClusterDefaults.detect(batch, null, null), "the batch shell launches on its host only");
        assertTrue(SlurmEnvironment.outsideStepNote(batch).orElseThrow().startsWith("note: inside Slurm job 123456 but not in a task of srun"));
        assertEquals(Optional.empty(), SlurmEnvironment.outsideStepNote(slurmTask(0)));
        final Map<String, String> noProc = slurmTask(0);
        noProc.remove("SLURM_PROCID");
        assertFails(noProc, "Slurm job 123456: SLURM_PROCID is not set");
        final Map<String, String> outOfRange = slurmTask(0);
        outOfRange.put("SLURM_PROCID", "2");
        assertFails(outOfRange, "Slurm: SLURM_PROCID=2 is not in [0, SLURM_NTASKS=2)");
        final Map<String, String> count = slurmTask(0);
        count.put("SLURM_JOB_NUM_NODES", "3");
        assertFails(count, "Slurm: SLURM_JOB_NUM_NODES=3 but SLURM_JOB_NODELIST names 2 hosts");
    }

    @Test
    void shouldDetectNothingOnAPlainHost() {
        assertEquals(Optional.empty(), ClusterDefaults.detect(Map.of("HOME", "/root", "HOSTNAME", "vm"), null, null));
    }

    @Test
    void shouldTakeNodeRankFromAKubernetesJobCompletionIndex() {
        final Map<String, String> env = new HashMap<>(Map.of("JOB_COMPLETION_INDEX", "2", "HOSTNAME", "moe-2",
            "MOEFLOW_NNODES", "3", "MOEFLOW_MASTER_ADDR", "moe-0.moe-svc", "KUBERNETES_SERVICE_HOST", "10.96.0.1"));
        final ClusterDefaults d = ClusterDefaults.detect(env, null, null).orElseThrow();
        assertEquals(new ClusterDefaults(d.detected(), 3, 2, "moe-0.moe-svc", 29500, "k8s-moe"), d);
        assertTrue(d.detected().startsWith("Kubernetes Indexed Job: pod 2 of 3"), d.detected());

        env.put("MOEFLOW_MASTER_PORT", "29600");
        env.put("MOEFLOW_RUN_NAME", "big");
        final ClusterDefaults flags = ClusterDefaults.detect(env, 4, "10.1.2.3").orElseThrow();
        assertEquals(new ClusterDefaults(flags.detected(), 4, 2, "10.1.2.3", 29600, "big"), flags, "flags win over the variables");
    }

    @Test
    void shouldSayWhatAKubernetesPodLacks() {
        assertFails(Map.of("JOB_COMPLETION_INDEX", "0", "MOEFLOW_MASTER_ADDR", "moe-0.moe-svc"),
            "Kubernetes Indexed Job (JOB_COMPLETION_INDEX=0): the number of nodes is unknown; set MOEFLOW_NNODES");
        assertFails(Map.of("JOB_COMPLETION_INDEX", "0", "MOEFLOW_NNODES", "2"),
            "Kubernetes Indexed Job (JOB_COMPLETION_INDEX=0): no master address; set MOEFLOW_MASTER_ADDR");
        assertFails(Map.of("JOB_COMPLETION_INDEX", "2", "MOEFLOW_NNODES", "2", "MOEFLOW_MASTER_ADDR", "m"),
            "Kubernetes Indexed Job: JOB_COMPLETION_INDEX=2 but 2 nodes");
        assertFails(Map.of("JOB_COMPLETION_INDEX", "x"), "Kubernetes Indexed Job: JOB_COMPLETION_INDEX=x is not a whole number");
        final ClusterDefaults noName = ClusterDefaults.detect(Map.of("JOB_COMPLETION_INDEX", "0", "HOSTNAME", "pod-xyz"), 1, "h")
            .orElseThrow();
        assertEquals(null, noName.runName(), "no run name when the host name is not <job>-<index>");
    }

    private static void assertFails(final Map<String, String> env, final String expected) {
        final IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> ClusterDefaults.detect(env, null, null));
        assertTrue(e.getMessage().startsWith(expected), e.getMessage());
    }
}
