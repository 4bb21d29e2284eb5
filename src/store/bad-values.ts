// Apart from redis-backend.ts so the metrics can name these without loading ioredis: a process that has loaded
// it (its RESP decoder subclasses String) runs `s.charCodeAt(i)` on every string about 5x slower, so a sidecar
// without Redis never loads it.

/** Where a value read from Redis that failed validation came from (rivven_fleet_bad_values_total{source}). */
export const BAD_VALUE_SOURCES = ['bucket', 'heartbeat', 'lease', 'change', 'config', 'version'] as const;
export type BadValueSource = (typeof BAD_VALUE_SOURCES)[number];
