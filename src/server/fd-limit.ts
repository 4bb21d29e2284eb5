import { readFileSync } from 'node:fs';

/**
 * Descriptors kept free of broker connections, so that with the file limit reached the store can still fsync,
 * the audit log can be reopened, /metrics and /healthz still answer, and refusals can still be sent.
 */
export const RESERVED_DESCRIPTORS = 64;

/** What the process can hold: max_connections, lowered to fit the open-file limit (less RESERVED_DESCRIPTORS). */
export function connectionsThatFit(maxConnections: number, fileLimit: number | undefined): number {
  const fit = fileLimit === undefined ? Infinity : Math.max(1, fileLimit - RESERVED_DESCRIPTORS);
  return Math.min(maxConnections, fit);
}

/**
 * The soft limit on open files of this process, from /proc/self/limits (Node has no getrlimit); undefined
 * where that file does not exist or says "unlimited".
 */
export function openFileLimit(limitsFile = '/proc/self/limits'): number | undefined {
  let text: string;
  try {
    text = readFileSync(limitsFile, 'utf8');
  } catch {
    return undefined;
  }
  const m = /^Max open files\s+(\d+|unlimited)/m.exec(text);
  return m === null || m[1] === 'unlimited' ? undefined : Number(m[1]);
}
