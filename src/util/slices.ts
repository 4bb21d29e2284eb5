/**
 * Long scans (every bucket, every configured entity) run in slices so no single request holds the event loop:
 * after SLICE_MS of work the scan yields to I/O with setImmediate and continues. Another broker's Ping waits at
 * most about one slice. The time is checked every CHECK_EVERY steps, so the check itself costs nothing.
 */
let SLICE_MS = 8;
const CHECK_EVERY = 256;

/** Sets the slice length; 0 yields every CHECK_EVERY steps (tests use it to make interleaving certain). */
export function setSliceMs(ms: number): void {
  SLICE_MS = ms;
}

export const yieldToEventLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Calls `step(i)` for i from 0 up to n (read once at the start), yielding between slices. */
export async function forRangeSliced(n: number, step: (i: number) => void): Promise<void> {
  let sliceStart = performance.now();
  for (let i = 0; i < n; i++) {
    step(i);
    if ((i & (CHECK_EVERY - 1)) === CHECK_EVERY - 1 && performance.now() - sliceStart > SLICE_MS) {
      await yieldToEventLoop();
      sliceStart = performance.now();
    }
  }
}

/**
 * Calls `step` for each item, yielding between slices; `step` returns false to stop early. Map and Set
 * iterators stay valid across the yields (entries deleted meanwhile are skipped, entries added are visited).
 */
export async function forEachSliced<T>(items: Iterable<T>, step: (item: T) => unknown): Promise<void> {
  let sliceStart = performance.now();
  let i = 0;
  for (const item of items) {
    if (step(item) === false) return;
    if ((++i & (CHECK_EVERY - 1)) === 0 && performance.now() - sliceStart > SLICE_MS) {
      await yieldToEventLoop();
      sliceStart = performance.now();
    }
  }
}

/**
 * Calls `step` for the items of `it` for at most one slice; true once `it` is exhausted. For work that must run
 * synchronously when it is small (a timer's pass whose effects callers read at once) and in slices when not.
 */
export function runSlice<T>(it: Iterator<T>, step: (item: T) => void): boolean {
  const sliceStart = performance.now();
  for (let i = 1; ; i++) {
    const r = it.next();
    if (r.done === true) return true;
    step(r.value);
    if ((i & (CHECK_EVERY - 1)) === 0 && performance.now() - sliceStart > SLICE_MS) return false;
  }
}
