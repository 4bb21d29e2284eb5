/**
 * The one way the CLI prints numbers for people: tables, `quota top`, `fleet status`. Approximate where it says
 * so; --json always carries the exact values.
 */

/** An approximate number: whole numbers as they are, else 2 decimals below 10, 1 below 100, none above ("2.35", "42.5"). */
export function formatNumber(n: number): string {
  if (Number.isInteger(n)) return String(n);
  const fixed = n.toFixed(n >= 100 ? 0 : n >= 10 ? 1 : 2);
  return fixed.includes('.') ? fixed.replace(/0+$/, '').replace(/\.$/, '') : fixed;
}

/** A count another process reported: a whole number, or "?" when it is not one (it came from Redis). */
export const formatCount = (n: unknown): string => (Number.isSafeInteger(n) ? String(n) : '?');

/** A ratio as a whole percentage: 0.734 -> "73%" (above 100% a bucket is in debt). */
export const formatPercent = (ratio: number): string => `${Math.round(ratio * 100)}%`;

/**
 * A duration. `coarse`, for how long ago a person cares about: "now", "42s", "5m", "3h". `fine`, for lags that
 * matter to the millisecond: "12ms", "1.5s". Not finite: "?".
 */
export function formatDuration(ms: number, precision: 'coarse' | 'fine'): string {
  if (!Number.isFinite(ms)) return '?';
  if (precision === 'fine') return ms < 1000 ? `${Math.round(ms)}ms` : `${(ms / 1000).toFixed(1)}s`;
  if (ms < 1000) return 'now';
  if (ms < 60_000) return `${Math.round(ms / 1000)}s`;
  if (ms < 3_600_000) return `${Math.round(ms / 60_000)}m`;
  return `${Math.round(ms / 3_600_000)}h`;
}
