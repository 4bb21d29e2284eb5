// A hostile (or merely curious) peer with the describe role asks once for a large reply, reads it, and stays
// connected. What the server keeps for that connection afterwards must not grow with the size of that reply:
// otherwise a few hundred idle connections, each having asked once, pin gigabytes (server.max_reply_bytes
// is 16 MiB by default).
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import t from 'tap';
import { startServer } from '../helpers/server.js';
import { WirePeer } from '../helpers/wire.js';
import { QuotaClient } from '../../src/client/quota-client.js';
import type { QuotaAlteration } from '../../src/protocol/messages/alter-quotas.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const arrayBuffers = (): number => {
  gc();
  gc();
  return process.memoryUsage().arrayBuffers;
};

t.test('a connection that once got a large reply does not keep a buffer of its size', async (t) => {
  const s = await startServer();
  t.teardown(() => s.stop());
  const admin = await QuotaClient.connect({ port: s.port });
  t.teardown(() => admin.close());
  // About 8,000 entities: a DescribeQuotas reply of roughly 0.5 MiB.
  for (let b = 0; b < 8; b++) {
    const alterations: QuotaAlteration[] = [];
    for (let i = 0; i < 1000; i++) {
      alterations.push({ entity: [['user', `tenant-${b}-${i}-${'x'.repeat(20)}`]], quota_key: 'request_rate', quota_value: 5 });
    }
    await admin.alterQuotas(alterations);
  }
  const peers: WirePeer[] = [];
  t.teardown(() => {
    for (const p of peers) p.close();
  });
  const before = arrayBuffers();
  let replyBytes = 0;
  const N = 20;
  for (let i = 0; i < N; i++) {
    const p = await WirePeer.connect(s.port);
    peers.push(p);
    const r = await p.request({ type: 'DescribeQuotas' });
    t.equal(r.type, 'QuotasDescribed');
    replyBytes = (r.entries as unknown[]).length;
    t.equal(await p.request({ type: 'Ping' }, 2).then((b) => b.type), 'Pong', 'the connection still answers');
  }
  t.equal(replyBytes, 8001, 'each peer got every entity (and the default)');
  const retained = arrayBuffers() - before;
  // Each reply is about 0.5 MiB: keeping one slab of its size per connection would be ~10 MiB here (20 MiB
  // at twice its size). The bound leaves room for the peers' own read buffers in this process.
  t.ok(retained < 4 * 1024 * 1024, `${N} idle connections retain ${(retained / 2 ** 20).toFixed(1)} MiB of buffers`);
});
