package io.moeflow.trainer.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class ModelConfigTest {
    @Test
    void shouldCountBenchModelParametersActiveShareAndFlops() {
        final ModelConfig c = ModelConfig.benchModel();
        // V*C + T*C + L*(4C + 3C^2 + 3C + C^2 + C + E*C + E*(2CF + F + C)) + 2C + V*C, worked by hand
        assertEquals(2_328_832L, c.parameterCount());
        assertEquals(65_920L, c.expertParameterCount());
        assertEquals(2_328_832L - 2L * 14 * 65_920, c.activeParametersPerToken());
        // 2 of 16 experts per token: 12.5% of the expert parameters are active
        final double expertParams = 2.0 * 16 * c.expertParameterCount();
        final double activeExpert = c.activeParametersPerToken() - (c.parameterCount() - expertParams);
        assertEquals(0.125, activeExpert / expertParams, 1e-12);
        // about 6.1 GFLOP per step of 16 x 128 tokens (the figure quoted for the PyTorch reference)
        assertEquals(6.09e9, c.flopsPerToken() * 16 * 128, 0.01e9);
    }

    @Test
    void shouldRejectInvalidFieldsWithNameAndValue() {
        final IllegalArgumentException heads = assertThrows(IllegalArgumentException.class, () ->
            new ModelConfig(256, 128, 128, 2, 3, 16, 2, 256, 0, RouterScore.SOFTMAX, 0.01, 0, false, 1e-3, 0, 0.02));
        assertTrue(heads.getMessage().contains("heads=3") && heads.getMessage().contains("channels=128"));
        final IllegalArgumentException topK = assertThrows(IllegalArgumentException.class, () ->
            new ModelConfig(256, 128, 128, 2, 4, 4, 5, 256, 0, RouterScore.SOFTMAX, 0.01, 0, false, 1e-3, 0, 0.02));
        assertTrue(topK.getMessage().contains("topK=5"));
        final IllegalArgumentException aux = assertThrows(IllegalArgumentException.class, () ->
            new ModelConfig(256, 128, 128, 2, 4, 4, 2, 256, 0, RouterScore.SOFTMAX, -1, 0, false, 1e-3, 0, 0.02));
        assertTrue(aux.getMessage().contains("auxLossCoef=-1.0"));
        assertThrows(IllegalArgumentException.class, () ->
            new ModelConfig(256, 128, 128, 2, 4, 4, 2, 256, 0, null, 0.01, 0, false, 1e-3, 0, 0.02));
        assertThrows(IllegalArgumentException.class, () ->
            new ModelConfig(256, 0, 128, 2, 4, 4, 2, 256, 0, RouterScore.SOFTMAX, 0.01, 0, false, 1e-3, 0, 0.02));
        assertThrows(IllegalArgumentException.class, () ->
            new ModelConfig(256, 128, 128, 2, 4, 4, 2, 256, 0, RouterScore.SOFTMAX, 0.01, 0, false, 1e-3, 0, 0));
    }
}
