// The fleet's accuracy (docs/algorithm.md, fleet buckets): a greedy principal spread over three sidecars in this
// process, on one private redis-server, each with a manual clock the test moves (test/helpers/fleet.ts), Redis's
// buckets held to the same time. Nothing here depends on how fast the machine is: the same run gives the same
// bytes. The same measurement in real time, over three sidecar processes, is bench/fleet.ts' accuracy.
import t from 'tap';
import type { QuotaClient } from '../../src/client/quota-client.js';
import { fleetClock, inProcessFleet } from '../helpers/fleet.js';
import { privateRedisUrl } from '../helpers/private-redis.js';

const URL = await privateRedisUrl();
const QUOTA = 100_000; // produce_bytes_rate, bytes per second
const WINDOW_MS = 200;
const SYNC_MS = 20;
const CALL_BYTES = 1000;
const CALLERS = 4; // per sidecar

/**
 * Four greedy callers per sidecar, each honouring every throttle_time_ms to the millisecond of the clocks. The
 * span starts 5 windows after the first Throttled reply anywhere and covers 10 windows; bytes of calls sent
 * within it count. The 5 windows let the fleet repay the opening burst: each sidecar spent a whole bucket
 * before its first sync told it of the others' (docs/algorithm.md, fleet buckets: a bucket new to N sidecars).
 * With `sync` off the sidecars never hear of each other. Returns the bytes counted over the quota's.
 */
async function greedyOverThree(tt: { teardown(fn: () => unknown): void }, sync: boolean): Promise<number> {
  const fleet = await inProcessFleet(tt, URL, 3, {
    quotasOf: () => ({ window_ms: WINDOW_MS, defaults: { produce_bytes_rate: QUOTA } }),
  });
  const clock = fleetClock(tt, URL, fleet, QUOTA);
  const callers = fleet.sidecars.flatMap(({ c }) => Array.from({ length: CALLERS }, () => ({ c, next: 0 })));
  const warmupMs = 5 * WINDOW_MS;
  const spanMs = 10 * WINDOW_MS;
  let now = 0;
  let nextSync = SYNC_MS;
  let spanStart = -1;
  let counted = 0;
  while (spanStart < 0 || now < spanStart + spanMs) {
    // Every caller due now calls, the one waiting longest first, again at once after Ok, until all wait.
    for (;;) {
      let due: { c: QuotaClient; next: number } | undefined;
      for (const x of callers) if (x.next <= now && (due === undefined || x.next < due.next)) due = x;
      if (due === undefined) break;
      const r = await due.c.recordProduce({ user: 'greedy', clientId: 'spread', bytes: CALL_BYTES });
      if (spanStart >= 0 && now >= spanStart && now < spanStart + spanMs) counted += CALL_BYTES;
      if (r.throttleTimeMs > 0 && spanStart < 0) spanStart = now + warmupMs;
      due.next = now + r.throttleTimeMs;
      // A caller never throttled at one instant would call forever without the clock moving.
      if (r.throttleTimeMs === 0 && counted > 100 * QUOTA) throw new Error('a caller is never throttled');
    }
    const to = Math.min(nextSync, ...callers.map((x) => x.next));
    clock.advance(to - now);
    now = to;
    if (now === nextSync) {
      if (sync) await clock.syncAll();
      nextSync += SYNC_MS;
    }
  }
  return counted / ((QUOTA * spanMs) / 1000);
}

t.test('a greedy principal spread over three sidecars gets the fleet quota within 10% over 10 windows', async (t) => {
  const ratio = await greedyOverThree(t, true);
  t.ok(ratio > 0.9 && ratio < 1.1, `fleet-wide over 10 windows: ${ratio.toFixed(3)} x the quota`);
});

t.test('without the sync the same callers get about three times the quota: the bound above is the fleet sharing', async (t) => {
  const ratio = await greedyOverThree(t, false);
  t.ok(ratio > 2.5, `with no sync: ${ratio.toFixed(3)} x the quota`);
});
