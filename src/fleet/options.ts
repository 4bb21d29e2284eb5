// The options of the fleet's sync, with its defaults in a frozen DEFAULT_* beside it: the one place a default
// is written (config/schema.ts reads it for rivven.yaml's fleet defaults; this module loads nothing).
import type { BreakerOptions } from '../util/breaker.js';

export interface FleetSyncOptions {
  /** Prefix of every key; sidecars with the same prefix share buckets. */
  keyPrefix: string;
  /** This sidecar's name in `rivven fleet status`. */
  nodeId: string;
  /** How often usage is pushed and the fleet's fills pulled. @default 100 */
  syncIntervalMs: number;
  /** How often this sidecar says it is alive (and reads who else is). @default 1000 */
  heartbeatIntervalMs: number;
  /** The breaker in front of Redis: opened, the sidecar decides alone (fallback). @default 3 failures, 2000 ms */
  breaker: BreakerOptions;
  /** Buckets per script call: a bigger sync is split, so no call holds Redis (or this loop) for long. @default 1000 */
  batchSize: number;
  /** Digest of the settings that shape buckets, compared across the fleet (`rivven fleet status`). @default "" */
  settings?: string;
  /** Each rate key's name (Resources.rateKeys); unset: the built-in three (no resource declared). */
  rateKeys?: readonly string[];
}

/** Every default of FleetSyncOptions (keyPrefix and nodeId are the store's and the sidecar's own). */
export const DEFAULT_FLEET_SYNC_OPTIONS: Readonly<Required<Omit<FleetSyncOptions, 'keyPrefix' | 'nodeId' | 'rateKeys'>>> = Object.freeze({
  syncIntervalMs: 100,
  heartbeatIntervalMs: 1000,
  breaker: Object.freeze({ failureThreshold: 3, resetTimeoutMs: 2000 }),
  batchSize: 1000,
  settings: '',
});
