package io.moeflow.launcher.launch;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Starts node agents over ssh: {@code <ssh command> <host> 'cd <dir> && exec <agent command>'}, one host per node
 * (the hostfile's lines in order). The ssh command must log in without a prompt (keys, BatchMode); the agent's
 * standard input is ssh's, which carries the join key.
 *
 * @param sshCommand the ssh client and its options, e.g. {@code [ssh, -o, BatchMode=yes]}
 * @param hosts      node r runs on {@code hosts.get(r)} ({@code name}, {@code user@name} or an address)
 */
public record SshAgentStarter(List<String> sshCommand, List<String> hosts) implements AgentStarter {
    /** The default of {@code --ssh-command}. */
    public static final String DEFAULT_COMMAND = "ssh -o BatchMode=yes";

    /** Validates the fields. */
    public SshAgentStarter {
        sshCommand = List.copyOf(sshCommand);
        hosts = List.copyOf(hosts);
        if (sshCommand.isEmpty() || hosts.isEmpty()) {
            throw new IllegalArgumentException("ssh agent starter: needs an ssh command and at least one host");
        }
    }

    /** An ssh command given as one string ({@code --ssh-command}), split at white space. */
    public static List<String> parseCommand(final String text) {
        final List<String> words = new ArrayList<>();
        for (final String w : text.strip().split("\\s+")) {
            if (!w.isEmpty()) {
                words.add(w);
            }
        }
        if (words.isEmpty()) {
            throw new IllegalArgumentException("--ssh-command '" + text + "': empty; give the ssh client and its options, e.g. '"
                + DEFAULT_COMMAND + "'");
        }
        return words;
    }

    @Override
    public Process start(final int node, final List<String> command, final Path workDir) throws IOException {
        final StringBuilder remote = new StringBuilder("cd ").append(quote(workDir.toString())).append(" && exec");
        for (final String word : command) {
            remote.append(' ').append(quote(word));
        }
        final List<String> ssh = new ArrayList<>(sshCommand);
        ssh.add(hosts.get(node));
        ssh.add(remote.toString());
        return new ProcessBuilder(ssh).redirectErrorStream(true).start();
    }

    @Override
    public String where(final int node) {
        return sshCommand.get(0) + " " + hosts.get(node);
    }

    /** One word for a POSIX shell: single-quoted, inner quotes as '"'"'. */
    static String quote(final String word) {
        return "'" + word.replace("'", "'\"'\"'") + "'";
    }
}
