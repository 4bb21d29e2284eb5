import t from 'tap';
import { AdaptiveScaler, factorFor, systemLoad } from '../src/quota/adaptive.js';
import { serverWithClient } from './helpers/server.js';

t.test('the factor: 1 up to the threshold, then linear to min_factor at full load', async (t) => {
  const o = { cpuThreshold: 0.8, minFactor: 0.5 };
  t.equal(factorFor(0, o), 1);
  t.equal(factorFor(0.8, o), 1);
  t.equal(factorFor(0.9, o), 0.75);
  t.equal(factorFor(1, o), 0.5);
  t.equal(factorFor(1.7, o), 0.5, 'a reading above 1 is full load');
  t.equal(factorFor(Number.NaN, o), 1, 'a bad reading does not scale');
  const load = systemLoad()();
  t.ok(load >= 0 && load <= 1, `the host reading is a fraction (${load.toFixed(2)})`);
});

t.test('limits follow an injected load reading, and recover when the load drops', async (t) => {
  let load = 0.1;
  const { s, c } = await serverWithClient(t, { quotas: { defaults: { request_rate: 100 } }, adaptive: { enabled: true } }, undefined, {});
  // The server's scaler reads the host; this one reads `load` and drives the same manager, as the timer would.
  const scaler = new AdaptiveScaler(
    { cpuThreshold: 0.8, minFactor: 0.5, checkIntervalMs: 1000 },
    () => load,
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
