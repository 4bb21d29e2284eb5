/**
 * In-process: QuotaManager.recordRequest against rate-limiter-flexible's RateLimiterMemory.consume on the
 * same key mix (1, 1k, 100k distinct principals, round robin), limits high enough that nothing is refused.
 * Both use the real clock. rate-limiter-flexible answers with a Promise, so it is awaited as a caller would.
 */
import { RateLimiterMemory } from 'rate-limiter-flexible';
import { systemClock } from '../src/quota/clock.js';
import { QuotaManager } from '../src/quota/quota-manager.js';
import { QuotaTable } from '../src/quota/quota-table.js';

export interface InProcessRow {
  principals: number;
  /** recordRequest reading the clock itself on every call, as a library caller would */
  rivven_ops_per_sec: number;
  /** recordRequest given one clock reading per 16 calls, as the server does per socket read */
  rivven_batched_ops_per_sec: number;
  rlf_ops_per_sec: number;
  ratio: number;
  ratio_batched: number;
}

function timeSync(ops: number, fn: (i: number) => void): number {
  const t0 = performance.now();
  for (let i = 0; i < ops; i++) fn(i);
  return ops / ((performance.now() - t0) / 1000);
}

async function timeAsync(ops: number, fn: (i: number) => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  for (let i = 0; i < ops; i++) await fn(i);
  return ops / ((performance.now() - t0) / 1000);
}

export async function inProcess(mixes = [1, 1000, 100_000]): Promise<InProcessRow[]> {
  const rows: InProcessRow[] = [];
  for (const n of mixes) {
    const keys = Array.from({ length: n }, (_, i) => `user-${i}`);
    const manager = new QuotaManager(new QuotaTable({ request_rate: 1e12 }), {}, systemClock);
    const limiter = new RateLimiterMemory({ points: 1e12, duration: 1 });
    const ops = Math.max(1_000_000, n * 4);
    // Warm both (JIT, and every key's bucket), then measure.
    timeSync(ops, (i) => manager.recordRequest(keys[i % n]!, 'app', 1, false));
    await timeAsync(Math.min(ops, 200_000), (i) => limiter.consume(keys[i % n]!, 1));
    const rivven = timeSync(ops, (i) => manager.recordRequest(keys[i % n]!, 'app', 1, false));
    let now = Date.now();
    const batched = timeSync(ops, (i) => {
      if ((i & 15) === 0) now = Date.now();
      manager.recordRequest(keys[i % n]!, 'app', 1, false, now);
    });
    const rlf = await timeAsync(Math.min(ops, 400_000), (i) => limiter.consume(keys[i % n]!, 1));
    const round = (x: number) => Math.round(x * 10) / 10;
    rows.push({
      principals: n,
      rivven_ops_per_sec: Math.round(rivven),
      rivven_batched_ops_per_sec: Math.round(batched),
      rlf_ops_per_sec: Math.round(rlf),
      ratio: round(rivven / rlf),
      ratio_batched: round(batched / rlf),
    });
  }
  return rows;
}

if (import.meta.url === `file://${process.argv[1]}`) console.log(JSON.stringify(await inProcess()));
