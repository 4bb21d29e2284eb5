package dev.rivven.kroxylicious;

/**
 * Where the filter gets its {@link QuotaDecider}: the one seam between the filter and the sidecar client.
 *
 * <p>Interim: until the project's Java client (clients/java, {@code BrokerQuotas}) is built beside this module,
 * the filter talks to the sidecar through {@link InterimWireDecider}, a minimal wire client kept only to prove the
 * filter end to end. It is to be replaced by an adapter over {@code BrokerQuotas} (same contract: throttle ms,
 * 0 on failure, -1 for Denied), and then deleted.
 */
final class Deciders {
    private Deciders() {
    }

    static QuotaDecider connect(RivvenQuotaConfig config) {
        return new InterimWireDecider(config);
    }
}
