import t, { type Test } from 'tap';
import type { Redis } from 'ioredis';
import { RedisQuotaStore } from '../../src/store/redis-quota-store.js';
import { newPrefix, redisAt } from '../helpers/fleet.js';
import { privateRedisUrl } from '../helpers/private-redis.js';
import { tcpProxy } from '../helpers/tcp-proxy.js';
import { waitUntil } from '../helpers/wait.js';

const SHARED = await privateRedisUrl();

/**
 * A listening store that reaches this file's Redis through a proxy judging each chunk it sends (`inspect`, see
 * tcp-proxy.ts), and `writer()`, a store that reaches Redis directly, under the same key prefix. No version poll:
 * a change reaches the listener by its notification, or by a catch-up after a reconnect. Each test closes the
 * listener itself (when is what it tests).
 */
async function listenerBehindProxy(t: Test, inspect: (chunk: Buffer) => 'pass' | 'hold' | 'drop') {
  const proxy = await tcpProxy(() => Number(new URL(SHARED).port), inspect);
  t.teardown(() => proxy.close());
  const prefix = newPrefix();
  const store = (url: string) => new RedisQuotaStore({ target: { url }, keyPrefix: prefix, pollIntervalMs: 3_600_000 });
  const listener = store(`redis://127.0.0.1:${proxy.port}/0`);
  await listener.load();
  const writer = async () => {
    const w = store(SHARED);
    t.teardown(() => w.close());
    await w.load();
    return w;
  };
  return { prefix, listener, writer };
}

/** Connections subscribed to the prefix's notification channel. */
const subscribers = async (admin: Redis, prefix: string) => Number((await admin.pubsub('NUMSUB', `${prefix}{quotas}:notify`))[1]);

t.test('the subscriber resubscribes after a reconnect, and closing it meanwhile leaves no unhandled rejection', async (t) => {
  const rejections: unknown[] = [];
  const onRejection = (reason: unknown) => rejections.push(reason);
  process.on('unhandledRejection', onRejection);
  t.teardown(() => process.off('unhandledRejection', onRejection));
  // The proxy holds back the third SUBSCRIBE it sees (the first is made at load, the second and third after the
  // two kills below): Redis never answers it.
  let subscribes = 0;
  const {
    prefix,
    listener,
    writer: makeWriter,
  } = await listenerBehindProxy(t, (chunk) => (/subscribe/i.test(chunk.toString('latin1')) && ++subscribes === 3 ? 'hold' : 'pass'));
  const writer = await makeWriter();
  const admin = redisAt(t, SHARED);
  const subscribed = async () => (await subscribers(admin, prefix)) === 2;
  t.ok(await subscribed(), 'subscribed');

  // Every subscribed connection of this file's Redis: the listener's, and the writer's (which has no proxy).
  const killSubscribers = () => admin.call('CLIENT', 'KILL', 'TYPE', 'pubsub');
  await killSubscribers();
  await waitUntil(async () => subscribes === 2 && (await subscribed()), 'subscribed again after a reconnect', { everyMs: 10 });
  await writer.apply([{ entity: [['user', 'heard']], quota_key: 'request_rate', quota_value: 4 }], []);
  await waitUntil(async () => listener.appliedVersion === writer.appliedVersion, 'the listener to hear of the change', { everyMs: 10 });
  t.equal(listener.foundByPoll, 0, 'heard by its notification');

  // Killed again; this time the resubscription goes unanswered, and the store closes while it waits. (ioredis'
  // own resubscription left that promise unhandled: its rejection on close ends a Node process.)
  await killSubscribers();
  await waitUntil(async () => subscribes === 3, 'the held resubscription', { everyMs: 10 });
  const subscriber = (listener as unknown as { subscriber: Redis }).subscriber;
  const ended = new Promise((resolve) => subscriber.once('end', resolve));
  await listener.close();
  await ended;
  await new Promise((resolve) => setImmediate(resolve)); // an unhandled rejection is reported after the tick it happened in
  t.same(rejections, [], 'no unhandled rejection');
});

t.test('a subscriber whose connection drops at each reconnect does not pile up commands to resend', async (t) => {
  // The proxy drops the listener's subscriber connection at the CLIENT ID of its first five reconnects: each time
  // the store's resubscription is left unanswered. On the connection that holds, the store must send what a
  // reconnect needs once, not one copy per dropped connection (ioredis resends unanswered commands by default).
  let drops = 0;
  let watching = false;
  let clientIds = 0;
  let subscribes = 0;
  const { prefix, listener } = await listenerBehindProxy(t, (chunk) => {
    const text = chunk.toString('latin1');
    if (!watching) return 'pass';
    const ids = text.match(/CLIENT\r\n\$2\r\nID/gi)?.length ?? 0;
    if (ids > 0 && drops < 5) {
      drops++;
      return 'drop';
    }
    clientIds += ids;
    subscribes += text.match(/subscribe/gi)?.length ?? 0;
    return 'pass';
  });
  t.teardown(() => listener.close());
  const admin = redisAt(t, SHARED);
  watching = true;
  await admin.call('CLIENT', 'KILL', 'ID', String(listener.subscriberId));
  await waitUntil(async () => drops === 5 && (await subscribers(admin, prefix)) === 1, 'subscribed again', { everyMs: 10 });
  t.equal(clientIds, 1, 'one CLIENT ID on the connection that held');
  t.equal(subscribes, 1, 'one SUBSCRIBE on it');
});

t.test('close() returns while a catch-up waits on a Redis that stopped answering (SIGSTOP, a partition)', async (t) => {
  // The proxy holds back the listener's first XRANGE (the catch-up a notification starts) and everything after it
  // on that connection: Redis never answers.
  let held = false;
  const { listener, writer: makeWriter } = await listenerBehindProxy(t, (chunk) => {
    if (!/xrange/i.test(chunk.toString('latin1'))) return 'pass';
    held = true;
    return 'hold';
  });
  const writer = await makeWriter();
  await writer.apply([{ entity: [['user', 'u']], quota_key: 'request_rate', quota_value: 1 }], []);
  await waitUntil(async () => held, 'the catch-up held', { everyMs: 10 });
  // Without the bound, close() waits for as long as Redis does not answer: past tap's timeout, a failed test.
  await listener.close();
  t.pass('closed while Redis never answered the catch-up');
});
