package dev.rivven.kroxylicious;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

import io.kroxylicious.proxy.plugin.PluginConfigurationException;

class RivvenQuotaConfigTest {
    @Test
    void defaults() {
        RivvenQuotaConfig c = RivvenQuotaConfig.of(null, null, null, null, null, null);
        assertEquals("127.0.0.1:9190", c.sidecar());
        assertEquals("127.0.0.1", c.host());
        assertEquals(9190, c.port());
        assertEquals(25, c.deadlineMs());
        assertEquals(PrincipalSource.SASL, c.principalSource());
        assertEquals(15_000, c.maxHoldMs());
    }

    @Test
    void badValuesAreRefusedSayingWhich() {
        assertTrue(assertThrows(PluginConfigurationException.class, () -> RivvenQuotaConfig.of("localhost", null, null, null, null, null))
                .getMessage().contains("sidecar"));
        assertThrows(PluginConfigurationException.class, () -> RivvenQuotaConfig.of("h:x", null, null, null, null, null));
        assertThrows(PluginConfigurationException.class, () -> RivvenQuotaConfig.of(null, null, null, 0, null, null));
        assertThrows(PluginConfigurationException.class, () -> RivvenQuotaConfig.of(null, null, null, 10_001, null, null));
        assertEquals(10_000, RivvenQuotaConfig.of(null, null, null, 10_000, null, null).deadlineMs());
        assertTrue(assertThrows(PluginConfigurationException.class, () -> RivvenQuotaConfig.of(null, null, null, null, "kerberos", null))
                .getMessage().contains("principalSource"));
    }

    @Test
    void holdsStayUnderTheRuntimesFilterTimeout() {
        assertThrows(PluginConfigurationException.class,
                () -> RivvenQuotaConfig.of(null, null, null, null, null, RivvenQuotaConfig.RUNTIME_FILTER_TIMEOUT_MS));
        assertEquals(RivvenQuotaConfig.RUNTIME_FILTER_TIMEOUT_MS - 1,
                RivvenQuotaConfig.of(null, null, null, null, null, RivvenQuotaConfig.RUNTIME_FILTER_TIMEOUT_MS - 1).maxHoldMs());
        assertThrows(PluginConfigurationException.class, () -> RivvenQuotaConfig.of(null, null, null, null, null, -1));
    }

    @Test
    void tlsPrincipalIsRefusedOnThePinnedRuntime() {
        assertTrue(assertThrows(PluginConfigurationException.class, () -> RivvenQuotaConfig.of(null, null, null, null, "tls", null))
                .getMessage().contains("0.12.0"));
        assertEquals(PrincipalSource.NONE, RivvenQuotaConfig.of(null, null, null, null, "none", null).principalSource());
    }
}
