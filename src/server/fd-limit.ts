import { readFileSync } from 'node:fs';

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
