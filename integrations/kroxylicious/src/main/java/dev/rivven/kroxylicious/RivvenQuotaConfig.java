package dev.rivven.kroxylicious;

import com.fasterxml.jackson.annotation.JsonCreator;
import com.fasterxml.jackson.annotation.JsonProperty;

import io.kroxylicious.proxy.plugin.PluginConfigurationException;

/**
 * The filter's configuration, the {@code config:} block of its entry in the proxy's {@code filterDefinitions}.
 *
 * @param sidecar         host:port of the rivven sidecar (default 127.0.0.1:9190)
 * @param token           the sidecar token (role {@code record}), or null for an open loopback sidecar
 * @param tls             TLS to the sidecar, or null for plain TCP
 * @param deadlineMs      longest a request waits for the sidecar's answer before it goes on unthrottled (default 25)
 * @param principalSource sasl (default), tls or none
 * @param maxHoldMs       longest the proxy holds a throttled connection's reads (default 15000; the pinned
 *                        Kroxylicious closes a connection whose filter work takes 20 s)
 */
public record RivvenQuotaConfig(String sidecar, String token, SidecarTls tls, int deadlineMs, PrincipalSource principalSource,
                                int maxHoldMs) {

    public static final String DEFAULT_SIDECAR = "127.0.0.1:9190";
    public static final int DEFAULT_DEADLINE_MS = 25;
    public static final int DEFAULT_MAX_HOLD_MS = 15_000;
    /** Kroxylicious 0.12 fails (and closes the connection of) filter work that takes longer than this. */
    static final int RUNTIME_FILTER_TIMEOUT_MS = 20_000;

    /** PEM files: the CA that signed the sidecar's certificate, and a client certificate and key for mTLS. */
    public record SidecarTls(@JsonProperty("ca") String ca, @JsonProperty("cert") String cert, @JsonProperty("key") String key) {
    }

    @JsonCreator
    public static RivvenQuotaConfig of(@JsonProperty("sidecar") String sidecar,
                                       @JsonProperty("token") String token,
                                       @JsonProperty("tls") SidecarTls tls,
                                       @JsonProperty("deadlineMs") Integer deadlineMs,
                                       @JsonProperty("principalSource") String principalSource,
                                       @JsonProperty("maxHoldMs") Integer maxHoldMs) {
        return new RivvenQuotaConfig(sidecar, token, tls, deadlineMs == null ? DEFAULT_DEADLINE_MS : deadlineMs,
                PrincipalSource.parse(principalSource), maxHoldMs == null ? DEFAULT_MAX_HOLD_MS : maxHoldMs);
    }

    public RivvenQuotaConfig {
        sidecar = sidecar == null || sidecar.isBlank() ? DEFAULT_SIDECAR : sidecar.trim();
        int colon = sidecar.lastIndexOf(':');
        if (colon <= 0 || colon == sidecar.length() - 1 || !sidecar.substring(colon + 1).chars().allMatch(Character::isDigit)) {
            throw new PluginConfigurationException("sidecar must be host:port; got '" + sidecar + "'");
        }
        if (deadlineMs < 1 || deadlineMs > 10_000) {
            throw new PluginConfigurationException("deadlineMs must be 1..10000; got " + deadlineMs);
        }
        if (maxHoldMs < 0 || maxHoldMs >= RUNTIME_FILTER_TIMEOUT_MS) {
            throw new PluginConfigurationException("maxHoldMs must be 0.." + (RUNTIME_FILTER_TIMEOUT_MS - 1) + "; got " + maxHoldMs);
        }
        if (principalSource == PrincipalSource.TLS) {
            // Kroxylicious 0.12's FilterContext does not expose the client's certificate (later releases add
            // clientTlsContext()); refusing beats silently treating every mTLS client as anonymous.
            throw new PluginConfigurationException("principalSource: tls needs a Kroxylicious release whose FilterContext exposes the "
                    + "client certificate; the pinned 0.12.0 does not (use sasl or none)");
        }
    }

    String host() {
        return sidecar.substring(0, sidecar.lastIndexOf(':'));
    }

    int port() {
        return Integer.parseInt(sidecar.substring(sidecar.lastIndexOf(':') + 1));
    }
}
