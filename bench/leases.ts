/**
 * The lease path's cost on the wire: one client, 64 concurrent loops each doing AcquireLease then ReleaseLease
 * against a sidecar process (max_in_flight set so every acquire is checked against a limit), for 4 s.
 */
import { QuotaClient } from '../src/client/quota-client.js';
import { startSidecar } from '../test/helpers/procs.js';

export async function leases(ms = 4000) {
  const sidecar = await startSidecar();
  const c = await QuotaClient.connect({ port: sidecar.port });
  try {
    await c.alterQuotas(
      Array.from({ length: 64 }, (_, i) => ({ entity: [['user', `svc-${i}`]], quota_key: 'max_in_flight' as const, quota_value: 1000 })),
    );
    let pairs = 0;
    const end = performance.now() + ms;
    await Promise.all(
      Array.from({ length: 64 }, async (_, i) => {
        while (performance.now() < end) {
          const lease = await c.acquireLease({ user: `svc-${i}`, clientId: 'worker' });
          if (lease.granted) await c.releaseLease(lease.leaseId);
          pairs++;
        }
      }),
    );
    return { acquire_release_pairs_per_sec: Math.round(pairs / (ms / 1000)) };
  } finally {
    await c.close();
    await sidecar.stop();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) console.log(JSON.stringify(await leases()));
