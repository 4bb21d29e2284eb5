import t from 'tap';
import { runInProcess } from '../helpers/cli.js';
import { serverWithClient } from '../helpers/server.js';
import { WirePeer } from '../helpers/wire.js';
import { waitUntil } from '../helpers/wait.js';

const setLimit = (entity: unknown, n: number | null) => ({ entity, quota_key: 'max_in_flight', quota_value: n });

t.test('a limit of N grants N; the next is Throttled with the time until the earliest lease ends', async (t) => {
  const { s, c } = await serverWithClient(t);
  await c.alterQuotas([setLimit([['user', 'w']], 3) as never]);
  const ttls = [5000, 2000, 8000];
  const granted = [];
  for (const ttlMs of ttls) granted.push(await c.acquireLease({ user: 'w', clientId: 'a', ttlMs }));
  t.ok(
    granted.every((g) => g.granted),
    'three granted',
  );
  s.clock.advance(500);
  t.same(
    await c.acquireLease({ user: 'w', clientId: 'b' }),
    { granted: false, throttleTimeMs: 1500, entity: 'user:w' },
    "the fourth waits for the 2000 ms lease (1500 ms left), shared by all w's clients",
  );
  s.clock.advance(1500);
  t.match(await c.acquireLease({ user: 'w' }), { granted: true }, 'after expiry (injected clock) one is free again');
  const first = granted[0]!;
  if (first.granted) await c.releaseLease(first.leaseId);
  t.match(await c.acquireLease({ user: 'w' }), { granted: true }, 'a release frees one');
  if (first.granted) await c.releaseLease(first.leaseId);
  t.match(await c.acquireLease({ user: 'w' }), { granted: false }, 'releasing twice frees nothing more (idempotent)');
  t.equal(s.app.leases.refused, 2);
  t.match(await c.acquireLease({ user: 'unlimited-user' }), { granted: true }, 'no max_in_flight: always granted');
  const usage = await c.describeUsage();
  t.match(
    usage.find((u) => u.quota_type === 'max_in_flight'),
    { entity: 'user:w', rate: 3, limit: 3, utilization: 1 },
    'usage shows the leases held',
  );
  const metrics = await s.app.metrics.getSingleMetricAsString('rivven_leases_held');
  t.match(metrics, /rivven_leases_held 4/);
});

t.test('a lease ends when the connection that took it closes', async (t) => {
  const { s, c } = await serverWithClient(t);
  await c.alterQuotas([setLimit([['client-id', 'svc']], 1) as never]);
  const peer = await WirePeer.connect(s.port);
  t.match(await peer.request({ type: 'AcquireLease', client_id: 'svc' }), { type: 'LeaseGranted', ttl_ms: 30000 });
  t.match(await c.acquireLease({ clientId: 'svc' }), { granted: false }, 'held by the other connection');
  peer.close();
  await waitUntil(() => s.app.leases.held === 0, 'the closed connection to free its lease');
  t.match(await c.acquireLease({ clientId: 'svc' }), { granted: true }, 'freed when it closed');
});

t.test('malformed lease requests get their error and the connection stays; max_leases bounds them all', async (t) => {
  const { s } = await serverWithClient(t, { quotas: { max_leases: 2 } });
  const p = await WirePeer.connect(s.port);
  t.teardown(() => p.close());
  for (const [body, code] of [
    [{ type: 'AcquireLease', ttl_ms: 0 }, 'INVALID_REQUEST'],
    [{ type: 'AcquireLease', ttl_ms: 3_600_001 }, 'INVALID_REQUEST'],
    [{ type: 'AcquireLease', ttl_ms: 'long' }, 'INVALID_REQUEST'],
    [{ type: 'AcquireLease', user: '' }, 'INVALID_ENTITY'],
    [{ type: 'ReleaseLease' }, 'INVALID_REQUEST'],
    [{ type: 'ReleaseLease', lease_id: 7 }, 'INVALID_REQUEST'],
    [{ type: 'ReleaseLease', lease_id: 'x'.repeat(100_000) }, 'INVALID_REQUEST'],
  ] as const) {
    t.match(await p.request(body), { type: 'Error', code }, JSON.stringify(body).slice(0, 60));
  }
  t.same(
    await p.request({ type: 'ReleaseLease', lease_id: 'never-issued' }),
    { type: 'Ok', throttle_time_ms: 0 },
    'an unknown lease is no error',
  );
  await p.request({ type: 'AcquireLease', user: 'a' });
  await p.request({ type: 'AcquireLease', user: 'b' });
  t.match(await p.request({ type: 'AcquireLease', user: 'c' }), { type: 'Error', code: 'OVERLOADED' }, 'past quotas.max_leases');
  t.same(await p.request({ type: 'Ping' }), { type: 'Pong' });
});

t.test('rivven quota usage shows leases held', async (t) => {
  const { s, c } = await serverWithClient(t);
  await c.alterQuotas([setLimit([['user', 'svc']], 4) as never]);
  await c.acquireLease({ user: 'svc' });
  const r = await runInProcess(['quota', 'usage', '--server', `127.0.0.1:${s.port}`]);
  t.match(r.stdout, /user:svc +max_in_flight +1 held +4 +25%/);
});
