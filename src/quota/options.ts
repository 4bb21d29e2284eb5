// The options of the quota domain's classes, each with its defaults in a frozen DEFAULT_* beside it: the one
// place a default is written (config/schema.ts reads these for rivven.yaml's defaults, and this module loads
// nothing, so reading the config does not load the domain).

export interface QuotaManagerOptions {
  /** What a per-second rate is measured over: its bucket holds rate x windowMs (a leaky bucket; docs/algorithm.md). @default 1000 */
  windowMs: number;
  /** Ring cells per window (the measured rate's ring); windowMs must be a multiple. @default 10 */
  windowBuckets: number;
  /** Upper bound of any throttle_time_ms. @default 30000 */
  maxThrottleMs: number;
  /** A bucket untouched this long is dropped. @default 3600000 */
  idleTimeoutMs: number;
  /** How often idle buckets are swept. @default 30000 */
  cleanupIntervalMs: number;
  /** Hard bound on tracked buckets; past it new buckets are not tracked (fail open). @default 1000000 */
  maxBuckets: number;
  /** One principal's share of maxBuckets; past it its further buckets share an overflow bucket. @default maxBuckets / 10 */
  maxBucketsPerPrincipal?: number | undefined;
  /**
   * How far past its capacity one bucket's fill may go, in ms of its quota: debt beyond it is forgiven, so
   * one huge call cannot throttle a principal for years (docs/algorithm.md, bounded debt). @default 300000
   */
  maxDebtMs: number;
}

export const DEFAULT_QUOTA_OPTIONS: Readonly<QuotaManagerOptions> = Object.freeze({
  windowMs: 1000,
  windowBuckets: 10,
  maxThrottleMs: 30000,
  idleTimeoutMs: 3_600_000,
  cleanupIntervalMs: 30_000,
  maxBuckets: 1_000_000,
  maxDebtMs: 300_000,
});

export interface LeaseOptions {
  /** Longest ttl_ms a lease may ask for. @default 3600000 */
  maxTtlMs: number;
  /** ttl_ms when the request gives none. @default 30000 */
  defaultTtlMs: number;
  /** Leases held at once, all principals together; past it AcquireLease is OVERLOADED. @default 100000 */
  maxLeases: number;
  /**
   * Leases one principal (the request's user, else its client-id) may hold at once, whatever its max_in_flight:
   * its share of maxLeases, so no principal can take every lease. @default maxLeases / 10
   */
  maxLeasesPerPrincipal: number;
  /** Cap of the wait a refusal reports. @default 30000 */
  maxThrottleMs: number;
}

/** The share of maxLeases a principal gets when none is configured. */
export const defaultShare = (maxLeases: number): number => Math.max(1, Math.floor(maxLeases / 10));

export const DEFAULT_LEASE_OPTIONS: Readonly<LeaseOptions> = Object.freeze({
  maxTtlMs: 3_600_000,
  defaultTtlMs: 30_000,
  maxLeases: 100_000,
  maxLeasesPerPrincipal: 10_000,
  maxThrottleMs: 30_000,
});

export interface AdaptiveOptions {
  /** Host CPU use (0..1) above which quotas are scaled down. @default 0.8 */
  cpuThreshold: number;
  /** Host memory use (0..1) above which quotas are scaled down. @default 0.9 */
  memoryThreshold: number;
  /** The factor at full load (1.0). @default 0.5 */
  minFactor: number;
  /** How often the load is read. @default 5000 */
  checkIntervalMs: number;
}

export const DEFAULT_ADAPTIVE_OPTIONS: Readonly<AdaptiveOptions> = Object.freeze({
  cpuThreshold: 0.8,
  memoryThreshold: 0.9,
  minFactor: 0.5,
  checkIntervalMs: 5000,
});
