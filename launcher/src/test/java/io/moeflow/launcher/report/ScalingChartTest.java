package io.moeflow.launcher.report;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import javax.imageio.ImageIO;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ScalingChartTest {
    @Test
    void shouldDrawOneBarPerMeasuredConfigurationAsAPng(@TempDir final Path dir) throws IOException {
        final Path file = dir.resolve("sub").resolve("scaling.png");
        ScalingChart.write("title", List.of(new ScalingChart.Bar("1 process x 1 thread", 5644.7),
            new ScalingChart.Bar("2 ranks data parallel", 5989.2), new ScalingChart.Bar("failed", Double.NaN)), file);
        final BufferedImage image = ImageIO.read(file.toFile());
        assertEquals(900, image.getWidth());
        assertEquals(450, image.getHeight());
    }

    @Test
    void shouldDrawNothingWhenNoConfigurationWasMeasured(@TempDir final Path dir) {
        final Path file = dir.resolve("scaling.png");
        ScalingChart.write("title", List.of(new ScalingChart.Bar("failed", Double.NaN)), file);
        assertFalse(Files.exists(file));
    }
}
