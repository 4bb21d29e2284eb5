// The seeds' tier tables (issue 20 item 9) as rivven.yaml.example carries them: each commented block, uncommented,
// is a valid config, and one throttle per table holds with a manual clock, through a real sidecar and client.
import { readFileSync } from 'node:fs';
import t from 'tap';
import { parse } from 'yaml';
import { configSchema } from '../../src/config/schema.js';
import { serverWithClient } from '../helpers/server.js';

const example = readFileSync(new URL('../../rivven.yaml.example', import.meta.url), 'utf8');

/** The block after `# --- seed <n>:` up to `# --- end`, its lines uncommented (the description lines dropped). */
function block(seed: string): Record<string, Record<string, unknown>> {
  const start = example.indexOf(`# --- seed ${seed}:`);
  const end = example.indexOf('# --- end', start);
  if (start < 0 || end < 0) throw new Error(`no seed ${seed} block in rivven.yaml.example`);
  const lines = example
    .slice(start, end)
    .split('\n')
    .filter((l) => /^# (quotas|tiers| {2})/.test(l))
    .map((l) => l.slice(2));
  return parse(lines.join('\n')) as Record<string, Record<string, unknown>>;
}

t.test('every block is a valid rivven.yaml, its values held canonical', async (t) => {
  for (const seed of ['000', '003', '004']) {
    const parsed = configSchema.safeParse(block(seed));
    t.ok(parsed.success, `seed ${seed}: ${parsed.success ? 'valid' : JSON.stringify(parsed.error.issues)}`);
  }
  t.same(Object.keys(block('000').tiers!), ['free', 'pro', 'enterprise', 'free_copy_trades', 'pro_copy_trades', 'enterprise_copy_trades']);
  t.same(Object.keys(block('003').tiers!), ['free', 'basic', 'pro', 'enterprise']);
  t.same(Object.keys(block('004').tiers!), ['free', 'basic', 'premium', 'enterprise']);
  t.equal(configSchema.parse(block('000')).tiers.free!.orders_rate, '10/min');
});

t.test('seed 000: free orders 10/min with burst 10: the 11th waits 6 s; 5 positions and 1 copy trade at once', async (t) => {
  const { s, c } = await serverWithClient(t, block('000'));
  await c.alterQuotas([
    { entity: [['user', 'alice']], quota_key: 'tier', quota_value: 'free' },
    {
      entity: [
        ['user', 'alice'],
        ['client-id', 'copy-trades'],
      ],
      quota_key: 'tier',
      quota_value: 'free_copy_trades',
    },
  ]);
  for (let i = 0; i < 10; i++) t.equal((await c.recordUsage({ user: 'alice', resource: 'orders' })).throttleTimeMs, 0);
  t.match(await c.recordUsage({ user: 'alice', resource: 'orders' }), { throttleTimeMs: 6000, quotaType: 'orders_rate', period: 'min' });
  for (let i = 0; i < 20; i++) t.equal((await c.recordRequest({ user: 'alice' })).throttleTimeMs, 0, 'requests: a burst of 20');
  t.match(await c.recordRequest({ user: 'alice' }), { quotaType: 'request_rate' }, 'the 21st request is throttled');
  for (let i = 0; i < 5; i++) t.match(await c.acquireLease({ user: 'alice', clientId: 'web' }), { granted: true }, `position ${i + 1}`);
  t.match(await c.acquireLease({ user: 'alice', clientId: 'web' }), { granted: false }, 'a 6th position is refused');
  t.match(await c.acquireLease({ user: 'alice', clientId: 'copy-trades' }), { granted: true }, 'a copy trade: its own pool');
  t.match(await c.acquireLease({ user: 'alice', clientId: 'copy-trades' }), { granted: false }, 'a 2nd copy trade is refused');
  // The 11th was recorded (record mode, as Kafka does): 6 s pays its debt, 6 s more frees room for one order.
  s.clock.advance(6000);
  t.equal((await c.recordUsage({ user: 'alice', resource: 'orders', admit: true })).throttleTimeMs, 6000, '6 s later: still full');
  s.clock.advance(6000);
  t.equal((await c.recordUsage({ user: 'alice', resource: 'orders', admit: true })).throttleTimeMs, 0, '12 s later: one more order');
});

t.test('seed 003: free 20 requests/min, 5 services/h, 2 concurrent services', async (t) => {
  const { c } = await serverWithClient(t, block('003'));
  await c.alterQuotas([{ entity: [['user', 'acme']], quota_key: 'tier', quota_value: 'free' }]);
  for (let i = 0; i < 20; i++) t.equal((await c.recordRequest({ user: 'acme' })).throttleTimeMs, 0);
  t.match(await c.recordRequest({ user: 'acme', admit: true }), { throttleTimeMs: 3000, quotaType: 'request_rate', period: 'min' });
  for (let i = 0; i < 5; i++) t.equal((await c.recordUsage({ user: 'acme', resource: 'services' })).throttleTimeMs, 0);
  t.match(await c.recordUsage({ user: 'acme', resource: 'services', admit: true }), {
    throttleTimeMs: 30_000,
    quotaType: 'services_rate',
    period: 'h',
  });
  t.match(await c.acquireLease({ user: 'acme' }), { granted: true });
  t.match(await c.acquireLease({ user: 'acme' }), { granted: true });
  t.match(await c.acquireLease({ user: 'acme' }), { granted: false }, 'a 3rd concurrent service is refused');
});

t.test('seed 004: free 5 requests/s with a burst of 10, 50 concurrent requests', async (t) => {
  const { c } = await serverWithClient(t, block('004'));
  await c.alterQuotas([{ entity: [['user', 'acme']], quota_key: 'tier', quota_value: 'free' }]);
  for (let i = 0; i < 10; i++) t.equal((await c.recordRequest({ user: 'acme' })).throttleTimeMs, 0);
  t.match(await c.recordRequest({ user: 'acme', admit: true }), { throttleTimeMs: 200, quotaType: 'request_rate' });
  for (let i = 0; i < 50; i++) t.match(await c.acquireLease({ user: 'acme' }), { granted: true });
  t.match(await c.acquireLease({ user: 'acme' }), { granted: false }, 'the 51st concurrent request is refused');
});
