package io.moeflow.launcher;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.junit.jupiter.api.Test;
import picocli.CommandLine;

/**
 * docs/configuration.md carries the --help text of every command between markers; this test keeps
 * it true. After changing an option, regenerate with
 * {@code mvn -pl launcher -am test -Dtest=ConfigurationDocTest -Dmoeflow.updateDocs=true -Dsurefire.failIfNoSpecifiedTests=false}.
 */
class ConfigurationDocTest {
    private static final Path DOC = Path.of("..", "docs", "configuration.md");
    private static final Pattern BLOCK = Pattern.compile(
        "<!-- BEGIN help: (.+?) -->\\n```text\\n(.*?)```\\n<!-- END help -->", Pattern.DOTALL);

    @Test
    void shouldDocumentEveryOptionOfEveryCommandExactlyAsTheHelpPrintsIt() throws IOException {
        final String doc = Files.readString(DOC);
        final Matcher m = BLOCK.matcher(doc);
        final StringBuilder updated = new StringBuilder();
        final List<String> documented = new ArrayList<>();
        final List<String> stale = new ArrayList<>();
        while (m.find()) {
            final String command = m.group(1);
            documented.add(command);
            final String help = help(command);
            if (!help.equals(m.group(2))) {
                stale.add(command);
            }
            m.appendReplacement(updated, Matcher.quoteReplacement(
                "<!-- BEGIN help: " + command + " -->\n```text\n" + help + "```\n<!-- END help -->"));
        }
        m.appendTail(updated);
        if (Boolean.getBoolean("moeflow.updateDocs")) {
            Files.writeString(DOC, updated.toString());
            return;
        }
        assertEquals(List.of(), stale, "docs/configuration.md is out of date for these commands; regenerate it (see "
            + "this test's Javadoc)");
        for (final String command : allCommands(new CommandLine(new Main()), "")) {
            assertTrue(documented.contains(command), "docs/configuration.md lacks a help block for '" + command + "'");
        }
    }

    /** The usage text of "train", "bench transport", ... at a fixed width, without colours. */
    private static String help(final String command) {
        CommandLine cli = new CommandLine(new Main());
        for (final String name : command.split(" ")) {
            cli = cli.getSubcommands().get(name);
        }
        cli.setUsageHelpAutoWidth(false);
        cli.setUsageHelpWidth(110);
        final ByteArrayOutputStream out = new ByteArrayOutputStream();
        cli.usage(new PrintStream(out, true, StandardCharsets.UTF_8), CommandLine.Help.Ansi.OFF);
        return out.toString(StandardCharsets.UTF_8);
    }

    private static List<String> allCommands(final CommandLine cli, final String prefix) {
        final List<String> names = new ArrayList<>();
        cli.getSubcommands().forEach((name, sub) -> {
            if (name.equals("help")) {
                return;
            }
            final String full = (prefix + " " + name).trim();
            names.add(full);
            names.addAll(allCommands(sub, full));
        });
        return names;
    }
}
