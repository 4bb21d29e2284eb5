import { Gauge, type Registry } from 'prom-client';
import type { MetricSources } from './metrics.js';
import { LATENCY_BOUNDS, REQUEST_TYPES, RESULT_COUNT, RESULTS } from './request-stats.js';
import { mirroredCounter, scraped, type Sample } from './scraped-metrics.js';

/** The quota admin's writes (AlterQuotas, ResetUsage's audit record). */
export function adminMetrics(registry: Registry, { admin }: MetricSources): void {
  mirroredCounter(
    registry,
    'rivven_quota_alterations_total',
    'Quota alterations applied (AlterQuotas, durable)',
    () => admin.alterationsApplied,
  );
  mirroredCounter(
    registry,
    'rivven_admin_writes_refused_total',
    'AlterQuotas and ResetUsage refused OVERLOADED: 256 admin writes were waiting for the store',
    () => admin.writesRefused,
  );
}

/** The listener and its connections: the limits, authentication, TLS handshakes, frames, and the open count. */
export function serverMetrics(registry: Registry, { server, guard }: MetricSources): void {
  mirroredCounter(
    registry,
    'rivven_connections_refused_total',
    'Connections refused at accept (max_connections, the open-file limit, or shutting down)',
    () => server.refusedConnections,
  );
  mirroredCounter(
    registry,
    'rivven_auth_failures_total',
    'Hello requests whose token was wrong or missing on a server with a tokens file',
    () => guard.failures,
  );
  mirroredCounter(
    registry,
    'rivven_tls_handshake_failures_total',
    'TLS handshakes that failed: plaintext on the TLS port, a missing or untrusted client certificate',
    () => server.failedHandshakes,
  );
  mirroredCounter(
    registry,
    'rivven_frame_timeouts_total',
    'Connections closed because a started frame did not complete within server.frame_timeout_ms',
    () => server.timedOutFrames,
  );
  mirroredCounter(
    registry,
    'rivven_partial_frame_refusals_total',
    'Connections closed because unfinished frames of all connections exceeded server.max_partial_frame_bytes',
    () => server.partialFrames.refused,
  );
  mirroredCounter(
    registry,
    'rivven_auth_timeouts_total',
    'Connections closed because they did not finish the TLS handshake and authentication within server.auth_timeout_ms',
    () => server.authTimeouts,
  );
  mirroredCounter(
    registry,
    'rivven_unauthenticated_evictions_total',
    'Unauthenticated connections closed to make room for a new one (server.max_unauthenticated_connections, max_connections)',
    () => server.evictedUnauthenticated,
  );
  new Gauge({
    name: 'rivven_unauthenticated_connections',
    help: 'Connections accepted and not yet authenticated (a TLS handshake in progress counts)',
    registers: [registry],
    collect() {
      this.set(server.unauthenticatedCount);
    },
  });
  new Gauge({
    name: 'rivven_partial_frame_bytes',
    help: 'Bytes of unfinished frames held for all connections',
    registers: [registry],
    collect() {
      this.set(server.partialFrames.used);
    },
  });
  new Gauge({
    name: 'rivven_connections',
    help: 'Open broker connections',
    registers: [registry],
    collect() {
      this.set(server.connectionCount);
    },
  });
}

/** The requests answered (RequestStats): counts by type and result, and the time each took. */
export function requestMetrics(registry: Registry, { requests }: MetricSources): void {
  registry.registerMetric(
    scraped('rivven_requests_total', 'Requests answered, by type and result', 'counter', () =>
      REQUEST_TYPES.flatMap((type, t) =>
        RESULTS.map((result, r) => ({ labels: { type, result }, value: requests.counts[t * RESULT_COUNT + r]! })),
      ),
    ),
  );
  registry.registerMetric(
    scraped('rivven_request_duration_seconds', 'Time from decoded frame to encoded reply, by request type', 'histogram', () =>
      REQUEST_TYPES.flatMap((type, t) => {
        const base = t * (LATENCY_BOUNDS.length + 1);
        let cumulative = 0;
        const out: Sample[] = LATENCY_BOUNDS.map((le, i) => {
          cumulative += requests.latency[base + i]!;
          return { metricName: 'rivven_request_duration_seconds_bucket', labels: { type, le }, value: cumulative };
        });
        cumulative += requests.latency[base + LATENCY_BOUNDS.length]!;
        out.push({ metricName: 'rivven_request_duration_seconds_bucket', labels: { type, le: '+Inf' }, value: cumulative });
        out.push({ metricName: 'rivven_request_duration_seconds_sum', labels: { type }, value: requests.latencySum[t]! });
        out.push({ metricName: 'rivven_request_duration_seconds_count', labels: { type }, value: cumulative });
        return out;
      }),
    ),
  );
}
