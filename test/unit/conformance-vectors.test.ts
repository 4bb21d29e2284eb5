// The conformance vectors (conformance/vectors/*.json) are the shared truth for every client: they must be what
// the code generates now, each frame must be well formed and carry its object, and the server must accept every
// request vector. When this fails after a protocol change, regenerate: node --import tsx conformance/generate.ts
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { renderVectors, VECTORS_DIR, type Vector } from '../../conformance/generate.js';
import { decodeBody } from '../../src/protocol/codec.js';
import { ERROR_CODES } from '../../src/protocol/error-codes.js';

const files = renderVectors();
const load = (file: string): Vector[] => (JSON.parse(readFileSync(join(VECTORS_DIR, file), 'utf8')) as { vectors: Vector[] }).vectors;

t.test('the checked-in vectors are what the code generates', async (t) => {
  for (const [file, text] of files) {
    t.equal(readFileSync(join(VECTORS_DIR, file), 'utf8'), text, `${file} is current (regenerate with conformance/generate.ts)`);
  }
});

t.test('each frame is well formed and carries its object', async (t) => {
  const names = new Set<string>();
  for (const file of ['requests.json', 'replies.json', 'errors.json']) {
    for (const v of load(file)) {
      t.notOk(names.has(v.name), `${v.name}: names are unique`);
      names.add(v.name);
      const f = Buffer.from(v.frame, 'hex');
      t.equal(f.readUInt32BE(0), f.length - 4, `${v.name}: the length counts correlation id and body`);
      t.equal(f.readUInt32BE(4), v.correlation_id, `${v.name}: correlation id`);
      t.same(decodeBody(f.subarray(8)), v.object, `${v.name}: object`);
      t.equal((v.object as { type: string }).type, v.type, `${v.name}: type`);
    }
  }
});

t.test('the vectors cover every request and reply type, every error code, the largest values and multi-byte names', async (t) => {
  const types = new Set([...load('requests.json'), ...load('replies.json'), ...load('errors.json')].map((v) => v.type));
  for (const type of [
    'Hello',
    'Ping',
    'RecordProduce',
    'RecordConsume',
    'RecordRequest',
    'RecordUsage',
    'DescribeQuotas',
    'AlterQuotas',
    'DescribeUsage',
    'ResetUsage',
    'AcquireLease',
    'ReleaseLease',
    'DescribeViolations',
    'DescribeFleet',
  ])
    t.ok(types.has(type), `request ${type}`);
  for (const type of [
    'HelloOk',
    'Pong',
    'Ok',
    'Throttled',
    'Denied',
    'QuotasDescribed',
    'QuotasAltered',
    'UsageDescribed',
    'UsageReset',
    'LeaseGranted',
    'ViolationsDescribed',
    'FleetDescribed',
    'Error',
  ])
    t.ok(types.has(type), `reply ${type}`);
  const codes = new Set(load('errors.json').map((v) => (v.object as { code: string }).code));
  for (const code of Object.keys(ERROR_CODES)) t.ok(codes.has(code), `error ${code}`);
  const all = [...files.values()].join('');
  t.match(all, /ffffffff/, 'the largest correlation id');
  t.match(all, /cf001fffffffffffff/, '2^53-1 as a uint64');
  t.match(all, /🦀/, 'four-byte UTF-8');
});

t.test("docs/protocol.md's worked example is the record-produce vector, byte for byte", async (t) => {
  const doc = readFileSync(new URL('../../docs/protocol.md', import.meta.url), 'utf8');
  const block = doc.slice(doc.indexOf('## Worked example')).split('\n\n')[2]!;
  const hexBytes = block
    .split('\n')
    .flatMap((line) => {
      const tokens = line.trim().split(/\s+/);
      const bytes: string[] = [];
      for (const tok of tokens) {
        if (!/^[0-9a-f]{2}$/.test(tok)) break;
        bytes.push(tok);
      }
      return bytes;
    })
    .join('');
  t.equal(hexBytes, load('requests.json').find((v) => v.name === 'record-produce')!.frame);
});
