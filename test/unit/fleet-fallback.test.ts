import t from 'tap';
import { emptyBatch, FleetBucketKeeper } from '../../src/fleet/fleet-bucket-keeper.js';
import { ManualClock } from '../../src/quota/clock.js';
import { FleetState } from '../../src/quota/fleet-state.js';
import { QuotaManager } from '../../src/quota/quota-manager.js';
import { QuotaTable } from '../../src/quota/quota-table.js';
import { DEFAULT_NAME } from '../../src/quota/entity.js';
import { LeaseManager } from '../../src/quota/lease-manager.js';
import { IN_FLIGHT } from '../../src/quota/quota-key.js';

// The fleet's fallback decides with quota / N by counting each unit N times (docs/algorithm.md, section 6).
// These check that claim against a bucket whose quota really is quota / N, call by call, in both modes.
function pair(n: number, quota: number) {
  const clock = new ManualClock(1_000_000);
  const options = { windowMs: 1000, windowBuckets: 10, maxDebtMs: 300_000, maxBuckets: 1000 };
  const fleet = new FleetBucketKeeper(options, 1100);
  fleet.fleet.divisor = n;
  const weighted = new QuotaManager(new QuotaTable({ request_rate: quota }), {}, clock, fleet);
  const share = new QuotaManager(new QuotaTable({ request_rate: quota / n }), {}, clock);
  return { clock, weighted, share, fleet };
}

for (const admit of [false, true]) {
  t.test(`divisor N decides exactly as quota / N (${admit ? 'admit' : 'record'} mode)`, async (t) => {
    const { clock, weighted, share } = pair(3, 300);
    let differences = 0;
    let throttled = 0;
    const sizes = [1, 7, 30, 2, 90, 5, 150, 11];
    for (let i = 0; i < 400; i++) {
      const count = sizes[i % sizes.length]!;
      const a = weighted.recordRequest('u', null, count, admit);
      const aMs = a.throttleMs;
      const b = share.recordRequest('u', null, count, admit);
      if (aMs !== b.throttleMs) differences++;
      if (b.throttleMs > 0) throttled++;
      clock.advance((i * 37) % 250);
    }
    t.ok(throttled > 50, `the run throttles (${throttled} of 400)`);
    t.equal(differences, 0, 'every answer the same');
  });
}

t.test('usage recorded in the fallback is kept unweighted for the push, and reconciled by the share of the drain', async (t) => {
  const { weighted, fleet } = pair(2, 10);
  for (let i = 0; i < 4; i++) weighted.recordRequest('u', null, 5, false);
  const names = fleet.swapQueue();
  t.equal(names.kinds.length, 1, 'one bucket queued, once');
  const batch = emptyBatch();
  // 20 units recorded; a fallback of 1.5 s at 10/s over 2 sidecars drained 7.5 of them.
  fleet.collect(names, 0, 1, batch, 1500, 2);
  t.same(batch.pushes, [12_500], 'pushed: 20 units less 7.5, in milli-units');
  t.same(batch.rates, [10]);
});

t.test('the groups a fleet sidecar must sync are bounded while Redis is out of reach (quotas.max_leases)', async (t) => {
  const table = new QuotaTable({});
  table.set({ kind: 'user', user: DEFAULT_NAME }, IN_FLIGHT, 1); // max_in_flight 1 for every user: one group each
  const leases = new LeaseManager(table, new ManualClock(0), { maxLeases: 10 });
  leases.fleet = { others: new Map(), changed: new Set(), state: new FleetState(), retryMs: 100 };
  for (let i = 0; i < 1000; i++) leases.acquire(`user-${i}`, null, undefined, 1);
  t.equal(leases.fleet.changed.size, 10, '1000 distinct asks, 10 groups remembered');
  t.equal(leases.held, 10, 'and quotas.max_leases held');
});
