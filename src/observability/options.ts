// The options of the observability classes, each with its defaults in a frozen DEFAULT_* beside it: the one
// place a default is written (config/schema.ts reads these for rivven.yaml's defaults; this module loads
// nothing, so reading the config loads neither pino nor the log's file writer).

/** pino's levels, as `log.level` accepts them. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface ViolationLogOptions {
  /** Events kept in memory for DescribeViolations. @default 10000 */
  maxEvents: number;
  /** violations.log; null: memory only. */
  file: string | null;
  /** Past this size the file is renamed to violations.log.1 (replacing it) and a new one starts. @default 16 MiB */
  maxFileBytes: number;
  /** An episode ends once this long passes without a violation of it. */
  episodeGapMs: number;
  /** Open episodes at most; past it violations are counted but start no new episode (the app: quotas.max_buckets). */
  maxEpisodes: number;
  /**
   * Open episodes of one principal (an entity's first component: `user:alice` of `user:alice/client-id:app`, or
   * an address) at most: its share, so no principal's episodes take the ring whole. @default maxEvents / 10
   */
  maxEpisodesPerPrincipal?: number;
  /** Bytes of events waiting to be written to the file at most; past it events are dropped (counted). @default 4 MiB */
  maxQueuedBytes?: number;
}

/** The defaults of ViolationLogOptions that are numbers (episodeGapMs and maxEpisodes come from the quota settings). */
export const DEFAULT_VIOLATION_LOG_OPTIONS: Readonly<Required<Pick<ViolationLogOptions, 'maxEvents' | 'maxFileBytes' | 'maxQueuedBytes'>>> =
  Object.freeze({
    maxEvents: 10_000,
    maxFileBytes: 16 * 1024 * 1024,
    maxQueuedBytes: 4 * 1024 * 1024,
  });
