import t from 'tap';
import { AdaptiveScaler } from '../../src/quota/adaptive.js';
import { serverWithClient } from '../helpers/server.js';
t.test('limits follow an injected load reading, and recover when the load drops', async (t) => {
  let load = 0.1;
  const { s, c } = await serverWithClient(t, { quotas: { defaults: { request_rate: 100 } }, adaptive: { enabled: true } }, undefined, {});
  // The server's scaler reads the host; this one reads `load` and drives the same manager, as the timer would.
  const scaler = new AdaptiveScaler(
    { cpuThreshold: 0.8, memoryThreshold: 0.9, minFactor: 0.5, checkIntervalMs: 1000 },
    () => ({ cpu: load, memory: 0 }),
    (f) => s.app.manager.setAdaptiveFactor(f),
  );
  const admitted = async (user: string) => {
    let n = 0;
    for (let i = 0; i < 120; i++) if ((await c.recordRequest({ user, admit: true })).throttleTimeMs === 0) n++;
    return n;
  };
  t.equal(scaler.check(), 1);
  t.equal(await admitted('calm'), 100, 'unloaded: the full 100 (quota x window)');
  load = 1;
  t.equal(scaler.check(), 0.5);
  t.equal(await admitted('busy'), 50, 'at full load: half');
  const usage = await c.describeUsage({ entities: [['user', 'busy']] });
  t.equal(usage[0]!.limit, 50, 'DescribeUsage shows the effective limit');
  t.match(await s.app.metrics.getSingleMetricAsString('rivven_quota_adaptive_factor'), /rivven_quota_adaptive_factor 0\.5/);
  load = 0.2;
  t.equal(scaler.check(), 1);
  s.clock.advance(1000);
  t.equal(await admitted('busy'), 100, 'recovered: the full quota again');
});
