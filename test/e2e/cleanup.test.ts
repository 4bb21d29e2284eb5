import { spawnSync } from 'node:child_process';
import t from 'tap';

t.test('the cleanup timer does not keep the process alive', async (t) => {
  const script = `
    import { QuotaManager } from './src/quota/quota-manager.ts';
    import { QuotaTable } from './src/quota/quota-table.ts';
    import { systemClock } from './src/quota/clock.ts';
    const m = new QuotaManager(new QuotaTable(), { cleanupIntervalMs: 50 }, systemClock);
    m.startCleanup();
    m.recordRequest('u', null, 1, false);`;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: new URL('../..', import.meta.url).pathname,
    env: { ...process.env, NODE_OPTIONS: '' },
    timeout: 10_000,
  });
  t.equal(r.signal, null, 'it exited by itself (not killed by the 10 s timeout)');
  t.equal(r.status, 0, String(r.stderr));
});
