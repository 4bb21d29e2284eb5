/**
 * Resolves once `condition()` holds, checking again every `everyMs` (5 ms unless told; a condition that asks
 * Redis or a server may want more room); rejects naming `what` after `timeoutMs` (30 s: a loaded machine is slow, and only a failing test waits that long). The one way a test waits:
 * for state that another process, a socket or the server's own timers change, a test waits for the condition,
 * never for a fixed time. The timeout only bounds a failing test; no test asserts how long the wait took.
 */
export async function waitUntil(
  condition: () => boolean | Promise<boolean>,
  what: string,
  options: number | { timeoutMs?: number; everyMs?: number } = {},
): Promise<void> {
  const { timeoutMs = 30_000, everyMs = 5 } = typeof options === 'number' ? { timeoutMs: options } : options;
  const until = performance.now() + timeoutMs;
  while (!(await condition())) {
    if (performance.now() > until) throw new Error(`waited ${timeoutMs} ms for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

/** Resolves with the first log line whose msg matches `msg`, once the process has written it. */
export async function logLine(logs: Record<string, unknown>[], msg: RegExp | string, timeoutMs?: number): Promise<Record<string, unknown>> {
  const match = (l: Record<string, unknown>) => (typeof msg === 'string' ? String(l.msg).startsWith(msg) : msg.test(String(l.msg)));
  await waitUntil(() => logs.some(match), `a log line ${String(msg)}`, timeoutMs);
  return logs.find(match)!;
}
