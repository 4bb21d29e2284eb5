// The conformance vectors (conformance/vectors/*.json) are the shared truth for every client: they must be what
// the code generates now, each frame must be well formed and carry its object, and the server must accept every
// request vector. When this fails after a protocol change, regenerate: node --import tsx conformance/generate.ts
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { VECTORS_DIR, type Vector } from '../../conformance/generate.js';
import { startServer } from '../helpers/server.js';
import { WirePeer } from '../helpers/wire.js';

const load = (file: string): Vector[] => (JSON.parse(readFileSync(join(VECTORS_DIR, file), 'utf8')) as { vectors: Vector[] }).vectors;
t.test('the server accepts every request vector as it stands', async (t) => {
  // Tier pro must exist for the alteration that assigns it, and the RecordUsage vectors' resources be declared.
  const s = await startServer({
    tiers: { pro: { request_rate: 10 } },
    quotas: { resources: ['orders', 'services', 'orders_per_customer_and_merchant'] },
  });
  t.teardown(() => s.stop());
  const peer = await WirePeer.connect(s.port);
  t.teardown(() => peer.close());
  const reqs = load('requests.json');
  for (const v of reqs) peer.sendRaw(Buffer.from(v.frame, 'hex'));
  const replies = await peer.waitFor(reqs.length);
  reqs.forEach((v, i) => {
    t.equal(replies[i]!.correlationId, v.correlation_id, `${v.name}: answered in order`);
    t.not(replies[i]!.body.type, 'Error', `${v.name}: accepted (${JSON.stringify(replies[i]!.body).slice(0, 120)})`);
  });
});
