package dev.rivven.kroxylicious;

import java.util.Locale;

import io.kroxylicious.proxy.plugin.PluginConfigurationException;

/** Where a connection's quota principal (the sidecar's {@code user}) comes from. */
public enum PrincipalSource {
    /** The user name of a successful SASL exchange (PLAIN, SCRAM-SHA-256/512) the proxy saw; else anonymous. */
    SASL,
    /** The subject of the client's TLS certificate. Not available on the pinned runtime: see the README. */
    TLS,
    /** Every connection anonymous: only client-id and default quotas apply. */
    NONE;

    static PrincipalSource parse(String text) {
        if (text == null) {
            return SASL;
        }
        try {
            return valueOf(text.trim().toUpperCase(Locale.ROOT));
        }
        catch (IllegalArgumentException e) {
            throw new PluginConfigurationException("principalSource must be one of sasl, tls, none; got '" + text + "'");
        }
    }
}
