package dev.rivven.kroxylicious;

/** Where the filter gets its {@link QuotaDecider}: the one seam between the filter and the sidecar client. */
final class Deciders {
    private Deciders() {
    }

    static QuotaDecider connect(RivvenQuotaConfig config, FilterMetrics metrics) {
        return new BrokerQuotasDecider(config, metrics);
    }
}
