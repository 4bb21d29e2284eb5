// A hostile (or merely curious) peer with the describe role asks once for a large reply, reads it, and stays
// connected. What the server keeps for that connection afterwards must not grow with the size of that reply:
// otherwise a few hundred idle connections, each having asked once, pin gigabytes (server.max_reply_bytes
// is 16 MiB by default).
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import t, { type Test } from 'tap';
import { startServer } from '../helpers/server.js';
import { waitUntil } from '../helpers/wait.js';
import { WirePeer } from '../helpers/wire.js';
import net from 'node:net';
import { encodeFrame } from '../../src/protocol/codec.js';
import { QuotaClient } from '../../src/client/quota-client.js';
import type { QuotaAlteration } from '../../src/protocol/messages/alter-quotas.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const arrayBuffers = (): number => {
  gc();
  gc();
  return process.memoryUsage().arrayBuffers;
};

/** A server with about 8,000 configured entities: a DescribeQuotas reply of roughly 0.5 MiB. */
async function serverWithLargeReplies(t: Test) {
  const s = await startServer();
  t.teardown(() => s.stop());
  const admin = await QuotaClient.connect({ port: s.port });
  t.teardown(() => admin.close());
  for (let b = 0; b < 8; b++) {
    const alterations: QuotaAlteration[] = [];
    for (let i = 0; i < 1000; i++) {
      alterations.push({ entity: [['user', `tenant-${b}-${i}-${'x'.repeat(20)}`]], quota_key: 'request_rate', quota_value: 5 });
    }
    await admin.alterQuotas(alterations);
  }
  return s;
}

t.test('a connection that once got a large reply does not keep a buffer of its size', async (t) => {
  const s = await serverWithLargeReplies(t);
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

t.test('peers that never read, pipelining large replies and Pings, cost about max_connection_bytes each', async (t) => {
  const s = await serverWithLargeReplies(t);
  const maxConnectionBytes = 1024 * 1024; // the default
  const N = 30;
  const sockets: net.Socket[] = [];
  t.teardown(() => {
    for (const socket of sockets) socket.destroy();
  });
  const before = arrayBuffers();
  const describe = encodeFrame(1, { type: 'DescribeQuotas' });
  const ping = encodeFrame(2, { type: 'Ping' });
  for (let i = 0; i < N; i++) {
    const socket = net.connect(s.port, '127.0.0.1');
    socket.on('error', () => undefined);
    socket.pause(); // never reads: the kernel's buffers fill, then the server's
    for (let k = 0; k < 60; k++) socket.write(Buffer.concat([describe, ping]));
    sockets.push(socket);
  }
  // Quiet: every peer's reading paused and no reply being built. Each peer asked for 30 MiB of replies, more
  // than the kernel's buffers take, so most of them wait in the server.
  const quiet = () => {
    const peers = s.app.server.connectionStats().filter((c) => c.readingPaused);
    return peers.length === N && peers.every((c) => !c.pendingReply);
  };
  await waitUntil(quiet, 'every peer stalled');
  const held = arrayBuffers() - before;
  const unsent = s.app.server.connectionStats().reduce((n, c) => n + c.unsentReplyBytes, 0);
  t.ok(unsent > (N * maxConnectionBytes) / 2, `replies wait in the server (${(unsent / 2 ** 20).toFixed(1)} MiB)`);
  // What holds the unsent replies may add a little, not double them (each 0.5 MiB reply copied into a slab of
  // twice its size, the Ping after it pinning the rest: 70.0 MiB held for 34.7 MiB unsent before).
  t.ok(
    held < 1.25 * unsent + N * 128 * 1024,
    `${N} stalled peers hold ${(held / 2 ** 20).toFixed(1)} MiB for ${(unsent / 2 ** 20).toFixed(1)} MiB unsent`,
  );
});
