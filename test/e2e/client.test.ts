import t, { type Test } from 'tap';
import { BrokerQuotas } from '../../src/client/broker-quotas.js';
import { QuotaClient } from '../../src/client/quota-client.js';
import { RivvenError } from '../../src/protocol/error-codes.js';
import { GateStore } from '../helpers/gate-store.js';
import { Hostile } from '../../conformance/harness.js';
import { serverWithClient, startServer } from '../helpers/server.js';
import { tcpProxy } from '../helpers/tcp-proxy.js';

t.test('typed calls for every request type; errors carry the server code', async (t) => {
  const { s, c } = await serverWithClient(t, { quotas: { defaults: { produce_bytes_rate: 100 } } }, undefined, { clientName: 'test' });
  t.match(await c.hello(), { protocolVersion: 1, serverVersion: /\d/ });
  await c.ping();
  t.same(await c.recordProduce({ user: 'a', bytes: 100 }), { throttleTimeMs: 0, recorded: true });
  t.same(await c.recordProduce({ user: 'a', bytes: 50 }), {
    throttleTimeMs: 500,
    quotaType: 'produce_bytes_rate',
    entity: 'user:a',
    recorded: true,
  });
  t.same(await c.recordConsume({ user: 'a', consumerGroup: 'g', bytes: 1 }), { throttleTimeMs: 0, recorded: true });
  t.same(await c.recordRequest({ clientId: 'x', count: 2 }), { throttleTimeMs: 0, recorded: true });
  t.equal(await c.alterQuotas([{ entity: [['user', 'a']], quota_key: 'request_rate', quota_value: 5 }]), 1);
  t.same(await c.describeQuotas([['user', 'a']]), [{ entity: [['user', 'a']], quotas: { request_rate: 5 } }]);
  const err = await c
    .alterQuotas([{ entity: [['user', 'a']], quota_key: 'request_rate', quota_value: 0 as never }])
    .catch((e: unknown) => e);
  t.type(err, RivvenError);
  t.match(err, { code: 'INVALID_QUOTA_VALUE', index: 0 });
  t.match(s.app.admin.store, { audit: [{ client: 'test', principal: 'anonymous' }] }, 'the client name reaches the audit log');
});

t.test('a timeout rejects only the late call', async (t) => {
  const store = new GateStore();
  const { c } = await serverWithClient(t, {}, store, { requestTimeoutMs: 300 });
  const before = c.ping();
  store.closeGate();
  const late = c.alterQuotas([{ entity: [['user', 'slow']], quota_key: 'request_rate', quota_value: 1 }]);
  await before;
  t.match(await late.catch((e: unknown) => e), { code: 'TIMEOUT' }, 'the stuck call times out');
  store.openGate();
  await c.ping();
  t.same(
    await c.describeQuotas([['user', 'slow']]),
    [{ entity: [['user', 'slow']], quotas: { request_rate: 1 } }],
    'the late reply was dropped and the next calls match their own replies',
  );
});

t.test('close() rejects what is pending and later calls', async (t) => {
  const store = new GateStore();
  const s = await startServer({}, store);
  t.teardown(() => {
    store.openGate();
    return s.stop();
  });
  const c = await QuotaClient.connect({ port: s.port });
  store.closeGate();
  const pending = c.alterQuotas([{ entity: [['user', 'p']], quota_key: 'request_rate', quota_value: 1 }]).catch((e: unknown) => e);
  await c.close();
  t.match(await pending, { code: 'CONNECTION_CLOSED' });
  t.match(await c.ping().catch((e: unknown) => e), { code: 'CONNECTION_CLOSED' });
});

/**
 * A sidecar the client reaches through a port of the test's own, so a restarted one gets a fresh port (see
 * tcp-proxy.ts): `stop()` stops it and refuses connections, `restart()` starts the same configuration again.
 */
async function restartable(t: Test) {
  let server = await startServer();
  let up = true;
  const proxy = await tcpProxy(() => (up ? server.port : undefined));
  t.teardown(() => proxy.close());
  return {
    port: proxy.port,
    async stop() {
      up = false;
      await server.stop();
    },
    async restart() {
      server = await startServer({}, server.app.admin.store);
      t.teardown(() => server.stop());
      up = true;
    },
  };
}

t.test('reconnects after the server restarts', async (t) => {
  const sidecar = await restartable(t);
  const c = await QuotaClient.connect({ port: sidecar.port, initialBackoffMs: 10, maxBackoffMs: 50 });
  t.teardown(() => c.close());
  await c.ping();
  const disconnected = new Promise((resolve) => c.once('disconnect', resolve));
  await sidecar.stop();
  await disconnected;
  // The same configuration at the same address, as a restarted sidecar would be.
  const reconnected = new Promise((resolve) => c.once('connect', resolve));
  await sidecar.restart();
  await reconnected;
  await c.ping();
  t.same(await c.recordRequest({ user: 'after-restart' }), { throttleTimeMs: 0, recorded: true }, 'calls work again');
});

t.test('calls made while disconnected wait for the reconnection', async (t) => {
  const sidecar = await restartable(t);
  const c = await QuotaClient.connect({ port: sidecar.port, initialBackoffMs: 10, maxBackoffMs: 20 });
  t.teardown(() => c.close());
  await sidecar.stop();
  const waiting = c.ping();
  await sidecar.restart();
  await waiting;
  t.pass('the call made during the outage completed');
});

t.test('connect gives up with one clear error naming the address', async (t) => {
  const err = await QuotaClient.connect({ port: 1, connectAttempts: 2, initialBackoffMs: 1 }).catch((e: unknown) => e);
  t.match(err, { code: 'CONNECTION_CLOSED', message: /cannot reach the rivven server at 127\.0\.0\.1:1 \(ECONNREFUSED\)/ });
});

t.test('BrokerQuotas returns the delay to apply, and fails open when the sidecar is gone', async (t) => {
  const s = await startServer({ quotas: { defaults: { produce_bytes_rate: 1000, request_rate: 1 } } });
  const client = await QuotaClient.connect({ port: s.port, requestTimeoutMs: 200, initialBackoffMs: 10 });
  const errors: Error[] = [];
  // A deadline no loaded machine misses while the server is up: past the default 25 ms a call answers 0 and counts
  // as a failure. Once the server is stopped, a call fails open as soon as the client sees the connection closed.
  const broker = new BrokerQuotas(client, { recordDeadlineMs: 10_000, onError: (e) => errors.push(e) });
  t.teardown(() => client.close());
  t.equal(await broker.produce('alice', 'app', 1000), 0);
  t.equal(await broker.produce('alice', 'app', 250), 250, 'over quota: delay 250 ms');
  t.equal(await broker.fetch('alice', 'app', 'etl', 10), 0);
  t.equal(await broker.request('alice', 'app'), 0);
  t.equal(await broker.request('alice', 'app'), 1000);
  await s.stop();
  t.equal(await broker.produce('alice', 'app', 1), 0, 'sidecar down: no delay');
  t.equal(broker.failures, 1);
  t.equal(errors.length, 1);
});

t.test('an undecodable reply fails its call at once with UNEXPECTED_REPLY, not at the call timeout', async (t) => {
  const hostile = new Hostile('garbage');
  const port = await hostile.listen();
  t.teardown(() => hostile.close());
  // A timeout far past tap's own: a call left to time out fails this test by its code, not by waiting.
  const c = new QuotaClient({ port, requestTimeoutMs: 600_000 });
  t.teardown(() => c.close());
  const reported: Error[] = [];
  c.on('error', (err: Error) => reported.push(err));
  const err = await c.recordRequest({ user: 'u' }).then(
    () => null,
    (e: RivvenError) => e,
  );
  t.equal(err?.code, 'UNEXPECTED_REPLY', String(err?.message));
  t.equal(reported.length, 1, 'and reported on the client');
});
