// What the domain reports when a caller is refused or throttled. The domain declares the sink and calls it on
// the hot path; the violation log (src/observability/violation-log.ts) implements it, so the domain never loads
// the log, its file writer or the wire modules (README, Layout: which layer may import which).

import type { PeriodUnit } from './rate-value.js';

/** The kinds of violation, as the violation log records them and DescribeViolations filters them. */
export const VIOLATION_TYPES = [
  'RATE_LIMIT_EXCEEDED',
  'CONCURRENT_LIMIT_EXCEEDED',
  'BLOCKED',
  'SHADOW_VIOLATION',
  'AUTHENTICATION_FAILED',
] as const;
export type ViolationType = (typeof VIOLATION_TYPES)[number];

/**
 * Where the hot path reports a violation; the log turns them into episodes. `period` names the rate of a
 * throttle or shadow violation on a key with rates per minute, hour or day ('s', or left out, otherwise): each
 * period is its own bucket, so its own episode.
 */
export interface ViolationSink {
  violation(type: ViolationType, entity: string, quotaType: string | null, detail: string, period?: PeriodUnit): void;
}

/** The sink of a manager nobody listens to (tests, embedding without a log). */
export const NO_VIOLATIONS: ViolationSink = { violation: () => undefined };
