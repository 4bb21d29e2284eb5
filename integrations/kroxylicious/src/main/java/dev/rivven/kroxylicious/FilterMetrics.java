package dev.rivven.kroxylicious;

import java.util.concurrent.atomic.AtomicBoolean;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.concurrent.atomic.LongAdder;

import java.time.Duration;

import io.micrometer.core.instrument.FunctionCounter;
import io.micrometer.core.instrument.Metrics;
import io.micrometer.core.instrument.Timer;

/**
 * The filter's counters, in Micrometer's global registry, so they appear beside the proxy's own metrics
 * (prometheus: rivven_kroxylicious_*_total). A fail-open episode is logged once when it starts and once when the
 * sidecar answers again, never per request.
 */
final class FilterMetrics {
    private static final Logger LOG = LoggerFactory.getLogger(FilterMetrics.class);

    // Counted here and read by Micrometer: a counter taken from a registry with no backend (a proxy without
    // metrics configured) counts nothing, and the log line below wants the real total.
    private final String sidecar;
    final LongAdder decisions;
    final LongAdder throttled;
    final LongAdder denied;
    final LongAdder failOpen;
    final LongAdder holdMs;
    /** What asking the sidecar added to a request (holds excluded), in buckets around the deadline. */
    final Timer decision;
    private final AtomicBoolean failingOpen = new AtomicBoolean();

    FilterMetrics(String sidecar) {
        this.sidecar = sidecar;
        decisions = counter("rivven.kroxylicious.decisions", "requests the sidecar was asked about");
        throttled = counter("rivven.kroxylicious.throttled", "responses given a throttle");
        denied = counter("rivven.kroxylicious.denied", "Produce and Fetch requests refused for a blocked principal");
        failOpen = counter("rivven.kroxylicious.fail.open", "sidecar calls answered 0 because it failed, was late or was not asked");
        holdMs = counter("rivven.kroxylicious.hold.ms", "milliseconds requests were held for a throttle");
        decision = Timer.builder("rivven.kroxylicious.decision")
                .description("time from a request's arrival (or the end of its hold) to its forwarding: the sidecar's share")
                .tag("sidecar", sidecar)
                .serviceLevelObjectives(ms(1), ms(2), ms(5), ms(10), ms(20), ms(25), ms(30), ms(35), ms(50), ms(100), ms(250), ms(1000))
                .register(Metrics.globalRegistry);
    }

    private static Duration ms(long v) {
        return Duration.ofMillis(v);
    }

    /** Tagged with the sidecar's address, so two filter definitions of one proxy keep their own series. */
    private LongAdder counter(String name, String help) {
        LongAdder adder = new LongAdder();
        FunctionCounter.builder(name, adder, LongAdder::sum).description(help).tag("sidecar", sidecar).register(Metrics.globalRegistry);
        return adder;
    }

    void failedOpen(String why) {
        failOpen.increment();
        if (failingOpen.compareAndSet(false, true)) {
            LOG.warn("rivven sidecar {} did not answer ({}): requests go on unthrottled (fail open) until it does", sidecar, why);
        }
    }

    /** The client's breaker opened {@code times} and answered {@code calls} calls 0 without sending them. */
    void breakerOpen(long times, long calls) {
        failOpen.add(calls);
        LOG.warn("rivven sidecar {}: the client's breaker opened {} time(s) in the last second; {} calls failed open unsent", sidecar, times,
                calls);
    }

    void answered() {
        if (failingOpen.get() && failingOpen.compareAndSet(true, false)) {
            LOG.info("rivven sidecar {} answers again: quotas enforced (fail-open total {})", sidecar, failOpen.sum());
        }
    }
}
