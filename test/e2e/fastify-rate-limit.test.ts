// The Fastify plugin (DESIGN section 19) over real HTTP: a Fastify app on port 0 in front of a real sidecar
// (in-process, on a manual clock, so a Retry-After can be honoured without waiting).
import Fastify, { type FastifyInstance } from 'fastify';
import t from 'tap';
import { QuotaClient } from '../../src/client/quota-client.js';
import { rivvenRateLimit, type RateLimitStats } from '../../src/http/fastify-rate-limit.js';
import { startServer } from '../helpers/server.js';
import { waitUntil } from '../helpers/wait.js';

async function setup(t: { teardown(fn: () => unknown): void }, opts: { leases?: boolean; slow?: Promise<void> } = {}) {
  const s = await startServer();
  const client = await QuotaClient.connect({ port: s.port });
  // Seed 004's free tier: 5 requests a second, a burst of 10; max_in_flight 1 for the leases case.
  await client.alterQuotas([
    { entity: [['tier', 'free']], quota_key: 'request_rate', quota_value: 5 },
    { entity: [['tier', 'free']], quota_key: 'request_burst', quota_value: 10 },
    { entity: [['user', 'acme']], quota_key: 'tier', quota_value: 'free' },
    { entity: [['user', 'svc']], quota_key: 'max_in_flight', quota_value: 1 },
  ]);
  const app = Fastify();
  await app.register(rivvenRateLimit, { client, tenant: 'x-tenant', leases: opts.leases ?? false, recordDeadlineMs: 1000 });
  app.get('/', async () => {
    await opts.slow;
    return { ok: true };
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}/`;
  t.teardown(async () => {
    await app.close();
    await client.close();
    await s.stop();
  });
  const get = (tenant?: string, signal?: AbortSignal) => fetch(url, { headers: tenant ? { 'x-tenant': tenant } : {}, signal });
  const stats = (app as unknown as { rivvenRateLimit: RateLimitStats }).rivvenRateLimit;
  return { s, client, get, stats };
}

t.test('a free-tier tenant (5/s, burst 10) gets 10, then 429 with a Retry-After that, honoured, succeeds', async (t) => {
  const { s, get } = await setup(t);
  for (let i = 0; i < 10; i++) t.equal((await get('acme')).status, 200, `request ${i + 1}`);
  const refused = await get('acme');
  t.equal(refused.status, 429);
  const retryAfter = Number(refused.headers.get('retry-after'));
  t.equal(retryAfter, 1, 'Retry-After in whole seconds (the sidecar said 200 ms)');
  t.equal(refused.headers.get('x-ratelimit-remaining'), '0');
  t.equal(refused.headers.get('x-ratelimit-reset'), '1');
  t.match(await refused.json(), { error: 'rate_limited', retry_after_ms: 200 });
  t.equal((await get('acme')).status, 429, 'still refused before the time has passed');
  s.clock.advance(retryAfter * 1000);
  t.equal((await get('acme')).status, 200, 'honoured: admitted');
  for (let i = 0; i < 30; i++) t.equal((await get('someone-else')).status, 200, `another tenant is untouched (${i + 1})`);
  t.equal((await get()).status, 200, 'a request without a tenant passes unrecorded');
});

t.test('X-RateLimit-Limit and -Remaining come from the usage snapshot once it is fetched', async (t) => {
  const { get } = await setup(t);
  await get('acme');
  let r = await get('acme');
  await waitUntil(
    async () => {
      if (r.headers.get('x-ratelimit-limit') !== null) return true;
      await get('someone');
      r = await get('acme');
      return false;
    },
    'the usage snapshot in the headers',
    { everyMs: 10 },
  );
  t.equal(r.headers.get('x-ratelimit-limit'), '5', "the tier's rate");
  t.ok(Number(r.headers.get('x-ratelimit-remaining')) >= 0);
});

t.test('a blocked tenant gets 403 with the reason', async (t) => {
  const { client, get, stats } = await setup(t);
  await client.alterQuotas([{ entity: [['user', 'mallory']], quota_key: 'blocked', quota_value: 'abuse report 42' }]);
  const r = await get('mallory');
  t.equal(r.status, 403);
  t.same(await r.json(), { error: 'forbidden', reason: 'abuse report 42' });
  t.equal(stats.denied, 1);
});

t.test('leases bound concurrent requests (max_in_flight) and are released with the response', async (t) => {
  let finish: () => void = () => undefined;
  const slow = new Promise<void>((resolve) => (finish = resolve));
  const { s, get } = await setup(t, { leases: true, slow });
  const first = get('svc');
  // The first request holds the one lease while its handler waits; the second is refused.
  await waitUntil(() => s.app.leases.held === 1, 'the first request holding its lease');
  const second = await get('svc');
  t.equal(second.status, 429);
  t.match(await second.json(), { error: 'too_many_in_flight' });
  finish();
  t.equal((await first).status, 200);
  await waitUntil(() => s.app.leases.held === 0, 'the lease released after the response');
  t.equal((await get('svc')).status, 200, 'the next request gets the freed lease');
});

t.test('a lease is released when the client goes away before its response', async (t) => {
  // onResponse never ran for an aborted request: the lease was held for its ttl (30 s) and the tenant's next
  // requests were refused with 429 meanwhile.
  let finish: () => void = () => undefined;
  const slow = new Promise<void>((resolve) => (finish = resolve));
  const { s, get } = await setup(t, { leases: true, slow });
  const aborter = new AbortController();
  const gone = get('svc', aborter.signal).catch((err: Error) => err.name);
  await waitUntil(() => s.app.leases.held === 1, 'the request holding its lease');
  aborter.abort();
  t.equal(await gone, 'AbortError');
  await waitUntil(() => s.app.leases.held === 0, 'the lease released when the client left', 5000);
  finish();
  t.equal((await get('svc')).status, 200, 'the next request gets the lease');
});

t.test('the sidecar away: requests pass, counted', async (t) => {
  const { s, get, stats } = await setup(t);
  await s.stop();
  for (let i = 0; i < 20; i++) t.equal((await get('acme')).status, 200, `request ${i + 1} passes`);
  t.ok(stats.failures >= 1, `failures counted (${stats.failures})`);
});

t.test('a tenant the sidecar refuses as a name gets 400, not a pass around every limit', async (t) => {
  // A tenant of 1025 bytes was let through unrecorded (INVALID_ENTITY counted as a failure): any tenant escaped
  // its limits by a long enough name.
  const { get, stats } = await setup(t);
  const long = 'a'.repeat(1025);
  for (let i = 0; i < 3; i++) {
    const r = await get(long);
    t.equal(r.status, 400);
    t.match(await r.json(), { error: 'invalid_tenant' });
  }
  t.equal(stats.failures, 0, 'a bad name is not a sidecar away');
  t.equal((await get('a'.repeat(1024))).status, 200, '1024 bytes is a name');
});

t.test('a usage row the headers cannot show gives no limit headers, never Infinity or NaN', async (t) => {
  for (const [limit, rate] of [
    [Number.POSITIVE_INFINITY, 1],
    [Number.NaN, 1],
    [5, Number.POSITIVE_INFINITY],
  ]) {
    let refreshed = 0;
    const client = {
      recordRequest: async () => ({ throttleTimeMs: 0, recorded: true }),
      describeUsage: async ({ entities }: { entities: [string, string][] }) => {
        refreshed++;
        return [{ quota_type: 'request_rate', user: entities[0]?.[1], limit, rate }];
      },
    };
    const app = Fastify();
    await app.register(rivvenRateLimit, { client: client as unknown as QuotaClient, tenant: 'x-tenant' });
    app.get('/', async () => ({ ok: true }));
    t.teardown(() => app.close());
    await app.inject({ method: 'GET', url: '/', headers: { 'x-tenant': 't' } });
    await waitUntil(() => refreshed === 1, 'the background refresh');
    await new Promise((resolve) => setImmediate(resolve));
    const r = await app.inject({ method: 'GET', url: '/', headers: { 'x-tenant': 't' } });
    t.equal(r.statusCode, 200);
    t.equal(r.headers['x-ratelimit-limit'], undefined, `limit ${limit}, rate ${rate}`);
  }
});

/** A sidecar, its client and a Fastify app counting bytes (`bytes: true`) on port 0; `routes` adds what it serves. */
async function bytesApp(t: { teardown(fn: () => unknown): void }, routes: (app: FastifyInstance) => void) {
  const s = await startServer();
  const client = await QuotaClient.connect({ port: s.port });
  const app = Fastify();
  await app.register(rivvenRateLimit, { client, tenant: 'x-tenant', bytes: true, recordDeadlineMs: 1000, clock: s.clock });
  routes(app);
  await app.listen({ port: 0, host: '127.0.0.1' });
  const base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
  t.teardown(async () => {
    await app.close();
    await client.close();
    await s.stop();
  });
  return { s, client, app, base };
}

async function setupBytes(t: { teardown(fn: () => unknown): void }) {
  const { s, client, app, base } = await bytesApp(t, (app) => {
    app.post('/', async (req) => ({ got: String(req.body).length }));
    app.get('/big', async () => 'x'.repeat(3000));
    app.get('/stream', async (_req, reply) => {
      const { Readable } = await import('node:stream');
      return reply.type('text/plain').send(Readable.from([Buffer.alloc(2000, 1), Buffer.alloc(1000, 2)]));
    });
  });
  await client.alterQuotas([
    { entity: [['user', 'uploader']], quota_key: 'produce_bytes_rate', quota_value: 1000 },
    { entity: [['user', 'reader']], quota_key: 'consume_bytes_rate', quota_value: 1000 },
  ]);
  const post = (tenant: string, body: string | ReadableStream) =>
    fetch(`${base}/`, {
      method: 'POST',
      headers: { 'x-tenant': tenant, 'content-type': 'text/plain' },
      body,
      ...(typeof body === 'string' ? {} : { duplex: 'half' }),
    } as RequestInit);
  const get = (tenant: string, path = '/big') => fetch(`${base}${path}`, { headers: { 'x-tenant': tenant } });
  const usage = async (tenant: string, key: string) =>
    (await client.describeUsage({ entities: [['user', tenant]] })).find((b) => b.quota_type === key)?.rate ?? 0;
  return { s, post, get, usage, stats: (app as unknown as { rivvenRateLimit: RateLimitStats }).rivvenRateLimit };
}

t.test('bytes: a request body with Content-Length is recorded before the handler, in admit mode', async (t) => {
  const { s, post, usage } = await setupBytes(t);
  t.equal((await post('uploader', 'a'.repeat(800))).status, 200, 'within the 1000 B/s produce quota');
  const refused = await post('uploader', 'a'.repeat(800));
  t.equal(refused.status, 429, '1600 bytes in a second: over');
  t.ok(Number(refused.headers.get('retry-after')) >= 1);
  t.equal(await usage('uploader', 'produce_bytes_rate'), 800, 'the refused body recorded nothing');
  s.clock.advance(1000);
  t.equal((await post('uploader', 'a'.repeat(800))).status, 200, 'a second later: admitted');
  t.equal((await post('other', 'a'.repeat(5000))).status, 200, 'another tenant is untouched');
});

t.test('bytes: a chunked request body is counted as read and recorded after the response', async (t) => {
  const { s, post, usage } = await setupBytes(t);
  const chunked = () =>
    new ReadableStream({
      start(c) {
        c.enqueue(new TextEncoder().encode('b'.repeat(1500)));
        c.enqueue(new TextEncoder().encode('b'.repeat(1500)));
        c.close();
      },
    });
  t.equal((await post('uploader', chunked())).status, 200, 'the first chunked body passes (its size is unknown up front)');
  await waitUntil(async () => (await usage('uploader', 'produce_bytes_rate')) === 3000, 'the 3000 bytes recorded');
  const next = await post('uploader', 'a');
  t.equal(next.status, 429, 'the throttle those bytes earned refuses the next request');
  s.clock.advance(Number(next.headers.get('retry-after')) * 1000);
  t.equal((await post('uploader', 'a')).status, 200, 'Retry-After honoured: admitted');
});

t.test('bytes: responses are recorded after the fact and their throttle refuses what follows', async (t) => {
  const { s, get, usage, stats } = await setupBytes(t);
  t.equal((await get('reader')).status, 200, 'the first 3000-byte response is sent');
  await waitUntil(async () => (await usage('reader', 'consume_bytes_rate')) === 3000, 'the 3000 response bytes recorded');
  await waitUntil(async () => (await get('reader')).status === 429, 'the next request refused');
  t.equal(stats.throttled, 1);
  t.equal((await get('someone')).status, 200, 'another tenant is untouched');
  s.clock.advance(5000);
  t.equal(await usage('reader', 'consume_bytes_rate'), 0, 'drained');
  const again = await get('reader', '/stream');
  t.equal(again.status, 200, 'once the throttle has passed: served');
  t.equal((await again.arrayBuffer()).byteLength, 3000);
  await waitUntil(async () => (await usage('reader', 'consume_bytes_rate')) === 3000, 'a streamed response counted too');
});

t.test('bytes: a response stream that fails closes its request, never the app', async (t) => {
  const { Readable } = await import('node:stream');
  const { base } = await bytesApp(t, (app) => {
    app.get('/broken', async (_req, reply) => {
      const body = new Readable({ read() {} });
      body.push(Buffer.alloc(500, 1));
      setImmediate(() => body.destroy(new Error('the disk went away')));
      return reply.type('text/plain').send(body);
    });
    app.get('/', async () => ({ ok: true }));
  });
  const broken = await fetch(`${base}/broken`, { headers: { 'x-tenant': 'r' } })
    .then((r) => r.arrayBuffer())
    .then(
      () => 'read',
      () => 'failed',
    );
  t.equal(broken, 'failed', 'the failed response is cut off');
  t.equal((await fetch(`${base}/`, { headers: { 'x-tenant': 'r' } })).status, 200, 'the app still serves');
});

t.test('bytes: a chunked body reaches the handler whole when another hook waits before the body is read', async (t) => {
  const { client, base } = await bytesApp(t, (app) => {
    // Counting with a 'data' listener put the stream in flowing mode: what came before the parser was lost.
    app.addHook('onRequest', async () => {
      await new Promise((resolve) => setTimeout(resolve, 20));
    });
    app.post('/', async (req) => ({ got: String(req.body).length }));
  });
  const body = new ReadableStream({
    start(c) {
      c.enqueue(new TextEncoder().encode('b'.repeat(1500)));
      c.enqueue(new TextEncoder().encode('b'.repeat(1500)));
      c.close();
    },
  });
  const r = await fetch(`${base}/`, {
    method: 'POST',
    headers: { 'x-tenant': 'u', 'content-type': 'text/plain' },
    body,
    duplex: 'half',
  } as RequestInit);
  t.same(await r.json(), { got: 3000 });
  const usage = async () =>
    (await client.describeUsage({ entities: [['user', 'u']] })).find((b) => b.quota_type === 'produce_bytes_rate')?.rate ?? 0;
  await waitUntil(async () => (await usage()) === 3000, 'the 3000 bytes recorded');
});
