import t from 'tap';
import { serverWithClient } from '../helpers/server.js';
import { WirePeer } from '../helpers/wire.js';
t.test('on the wire: OVERLOADED names quotas.max_leases_per_principal, then quotas.max_leases', async (t) => {
  const { s } = await serverWithClient(t, { quotas: { max_leases: 3, max_leases_per_principal: 2 } });
  const p = await WirePeer.connect(s.port);
  t.teardown(() => p.close());
  await p.request({ type: 'AcquireLease', user: 'a' });
  await p.request({ type: 'AcquireLease', user: 'a' });
  t.match(await p.request({ type: 'AcquireLease', user: 'a' }), {
    type: 'Error',
    code: 'OVERLOADED',
    message: /"user:a" holds .*2 of 2 \(quotas\.max_leases_per_principal\)/,
  });
  await p.request({ type: 'AcquireLease', user: 'b' });
  t.match(await p.request({ type: 'AcquireLease', user: 'c' }), {
    type: 'Error',
    code: 'OVERLOADED',
    message: /3 of 3 \(quotas\.max_leases\)/,
  });
  const text = await s.app.metrics.getSingleMetricAsString('rivven_lease_overloaded_total');
  t.match(text, /bound="max_leases_per_principal"} 1/);
  t.match(text, /bound="max_leases"} 1/);
});

t.test('a client-id without a user does not count against the user of the same name (no lock-out by name)', async (t) => {
  const { s } = await serverWithClient(t, { quotas: { max_leases: 100, max_leases_per_principal: 2 } });
  const p = await WirePeer.connect(s.port);
  t.teardown(() => p.close());
  for (let i = 0; i < 3; i++) await p.request({ type: 'AcquireLease', client_id: 'alice' });
  t.match(await p.request({ type: 'AcquireLease', client_id: 'alice' }), { code: 'OVERLOADED', message: /"client-id:alice" holds/ });
  t.match(await p.request({ type: 'AcquireLease', user: 'alice', client_id: 'app' }), { type: 'LeaseGranted' }, "user alice's first lease");
  t.equal(s.app.leases.heldByPrincipal('alice'), 1);
  t.equal(s.app.leases.heldByPrincipal(null, 'alice'), 2);
});
