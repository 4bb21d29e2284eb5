/**
 * Resolves once `condition()` holds (a promise of it is awaited), checking after every turn of the event loop (and at least every 5 ms);
 * rejects naming `what` after `timeoutMs`. For state that another process or the server's own timers change:
 * a test waits for the condition, never for a fixed time.
 */
export async function waitUntil(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const until = performance.now() + timeoutMs;
  while (!(await condition())) {
    if (performance.now() > until) throw new Error(`waited ${timeoutMs} ms for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
