// The Fastify plugin's `resource` option over real HTTP: each request is RecordUsage of a declared resource
// (seed 003's "services started"), its own quota apart from request_rate; an undeclared one fails open.
import Fastify from 'fastify';
import t from 'tap';
import { QuotaClient } from '../../src/client/quota-client.js';
import { rivvenRateLimit } from '../../src/http/fastify-rate-limit.js';
import { startServer } from '../helpers/server.js';

async function setup(t: { teardown(fn: () => unknown): void }, resource: string, errors: Error[] = []) {
  const s = await startServer({ quotas: { resources: ['services'] } });
  const client = await QuotaClient.connect({ port: s.port });
  await client.alterQuotas([
    { entity: [['user', 'acme']], quota_key: 'services_rate', quota_value: '5/h' },
    { entity: [['user', 'acme']], quota_key: 'request_rate', quota_value: 1 },
    { entity: [['user', 'acme']], quota_key: 'request_burst', quota_value: 1 },
  ]);
  const app = Fastify();
  await app.register(rivvenRateLimit, {
    client,
    tenant: 'x-tenant',
    resource,
    recordDeadlineMs: 1000,
    onError: (err) => errors.push(err),
  });
  app.post('/services', async () => ({ started: true }));
  await app.listen({ port: 0, host: '127.0.0.1' });
  const url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}/services`;
  t.teardown(async () => {
    await app.close();
    await client.close();
    await s.stop();
  });
  return { s, start: () => fetch(url, { method: 'POST', headers: { 'x-tenant': 'acme' } }) };
}

t.test('resource: services: 5 an hour, then 429 naming an hour-long wait; request_rate is not what counts', async (t) => {
  const { s, start } = await setup(t, 'services');
  for (let i = 0; i < 5; i++) t.equal((await start()).status, 200, `service ${i + 1} (request_rate 1/s would refuse the 2nd)`);
  const refused = await start();
  t.equal(refused.status, 429);
  // One service at 5/h frees up in 720 s; the throttle is capped by quotas.max_throttle_ms (30 s), so the client
  // asks again then (and is refused until the 720 s have passed).
  t.equal(refused.headers.get('retry-after'), '31', 'the wait, capped by max_throttle_ms');
  s.clock.advance(31_000);
  t.equal((await start()).status, 429, 'still refused after the capped wait');
  s.clock.advance(720_000 - 31_000);
  t.equal((await start()).status, 200, 'after the wait: admitted');
});

t.test('an undeclared resource: the sidecar refuses it (onError) and the request passes', async (t) => {
  const errors: Error[] = [];
  const { start } = await setup(t, 'orders', errors);
  t.equal((await start()).status, 200);
  t.match(errors[0], { code: 'INVALID_REQUEST', message: /orders is not in quotas.resources/ });
});

t.test('a resource name that can never be declared is refused at registration', async (t) => {
  const app = Fastify();
  const client = new QuotaClient({ port: 1 });
  await t.rejects(
    (async () => {
      await app.register(rivvenRateLimit, { client, tenant: 'x-tenant', resource: 'Bad Name' });
      await app.ready();
    })(),
    /resource "Bad Name": a resource name is 1 to 32 characters/,
  );
  await client.close();
  await app.close();
});
