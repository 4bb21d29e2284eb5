import t from 'tap';
import { RedisQuotaStore } from '../../src/store/redis-quota-store.js';
import { newPrefix } from '../helpers/fleet.js';
import { privateRedisUrl } from '../helpers/private-redis.js';
import { tcpProxy } from '../helpers/tcp-proxy.js';
import { waitUntil } from '../helpers/wait.js';

const SHARED = await privateRedisUrl();

t.test('close() returns while a catch-up waits on a Redis that stopped answering (SIGSTOP, a partition)', async (t) => {
  // The listener reaches Redis through a proxy that holds back its first XRANGE (the catch-up a notification
  // starts) and everything after it on that connection: Redis never answers.
  let held = false;
  const proxy = await tcpProxy(
    () => Number(new URL(SHARED).port),
    (chunk) => {
      if (!/xrange/i.test(chunk.toString('latin1'))) return 'pass';
      held = true;
      return 'hold';
    },
  );
  t.teardown(() => proxy.close());
  const prefix = newPrefix();
  const listener = new RedisQuotaStore({
    target: { url: `redis://127.0.0.1:${proxy.port}/0` },
    keyPrefix: prefix,
    pollIntervalMs: 3_600_000,
  });
  const writer = new RedisQuotaStore({ target: { url: SHARED }, keyPrefix: prefix, pollIntervalMs: 3_600_000 });
  t.teardown(() => writer.close());
  await listener.load();
  await writer.load();
  await writer.apply([{ entity: [['user', 'u']], quota_key: 'request_rate', quota_value: 1 }], []);
  await waitUntil(async () => held, 'the catch-up held', { everyMs: 10 });
  // Without the bound, close() waits for as long as Redis does not answer: past tap's timeout, a failed test.
  await listener.close();
  t.pass('closed while Redis never answered the catch-up');
});
