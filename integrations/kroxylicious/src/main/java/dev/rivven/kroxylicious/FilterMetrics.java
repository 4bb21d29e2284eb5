package dev.rivven.kroxylicious;

import java.util.concurrent.atomic.AtomicBoolean;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.Metrics;

/**
 * The filter's counters, in Micrometer's global registry, so they appear beside the proxy's own metrics
 * (prometheus: rivven_kroxylicious_*_total). A fail-open episode is logged once when it starts and once when the
 * sidecar answers again, never per request.
 */
final class FilterMetrics {
    private static final Logger LOG = LoggerFactory.getLogger(FilterMetrics.class);

    final Counter decisions = Metrics.counter("rivven.kroxylicious.decisions");
    final Counter throttled = Metrics.counter("rivven.kroxylicious.throttled");
    final Counter denied = Metrics.counter("rivven.kroxylicious.denied");
    final Counter failOpen = Metrics.counter("rivven.kroxylicious.fail.open");
    final Counter holdMs = Metrics.counter("rivven.kroxylicious.hold.ms");
    private final AtomicBoolean failingOpen = new AtomicBoolean();
    private final String sidecar;

    FilterMetrics(String sidecar) {
        this.sidecar = sidecar;
    }

    void failedOpen(String why) {
        failOpen.increment();
        if (failingOpen.compareAndSet(false, true)) {
            LOG.warn("rivven sidecar {} did not answer ({}): requests go on unthrottled (fail open) until it does", sidecar, why);
        }
    }

    /** The client's breaker opened {@code times} and answered {@code calls} calls 0 without sending them. */
    void breakerOpen(long times, long calls) {
        failOpen.increment(calls);
        LOG.warn("rivven sidecar {}: the client's breaker opened {} time(s) in the last second; {} calls failed open unsent", sidecar, times,
                calls);
    }

    void answered() {
        if (failingOpen.get() && failingOpen.compareAndSet(true, false)) {
            LOG.info("rivven sidecar {} answers again: quotas enforced (fail-open total {})", sidecar, (long) failOpen.count());
        }
    }
}
