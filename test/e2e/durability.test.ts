import { mkdtempSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { QuotaClient } from '../../src/client/quota-client.js';
import { FileQuotaStore } from '../../src/store/file-quota-store.js';
import { run, serve, runInProcess } from '../helpers/cli.js';
import { waitUntil } from '../helpers/wait.js';

const fresh = () => mkdtempSync(join(tmpdir(), 'rivven-durable-'));

t.test('every acknowledged alteration survives SIGKILL mid-stream', async (t) => {
  const cwd = fresh();
  const dataDir = join(cwd, 'data');
  const first = await serve(['--data-dir', dataDir], cwd);
  const client = await QuotaClient.connect({ port: first.port, requestTimeoutMs: 1000 });
  const acked: number[] = [];
  const inFlight: Promise<unknown>[] = [];
  // Keep several alterations in flight so the kill lands while some are being written, and once one was
  // acknowledged (a condition: on a loaded machine the first acknowledgement can take longer than the sending).
  for (let i = 0; i < 200; i++) {
    const p = client
      .alterQuotas([{ entity: [['user', `u${i}`]], quota_key: 'request_rate', quota_value: i + 1 }])
      .then(() => acked.push(i))
      .catch(() => undefined);
    inFlight.push(p);
    if (i === 120) {
      await waitUntil(() => acked.length > 0, 'an alteration acknowledged before the kill');
      first.child.kill('SIGKILL');
    }
    if (i % 8 === 7) await Promise.race([p, new Promise((r) => setTimeout(r, 5))]);
  }
  await Promise.all(inFlight);
  await first.exited;
  await client.close();
  t.ok(acked.length > 0, `${acked.length} alterations were acknowledged before the kill`);
  const reloaded = await new FileQuotaStore(dataDir).load();
  t.ok(reloaded.length >= acked.length, `the state files load (${reloaded.length} values)`);

  const second = await serve(['--data-dir', dataDir], cwd);
  const c2 = await QuotaClient.connect({ port: second.port });
  const entries = await c2.describeQuotas();
  const present = new Map(entries.map((e) => [String(e.entity[0]![1]), e.quotas.request_rate]));
  const missing = acked.filter((i) => present.get(`u${i}`) !== i + 1);
  t.same(missing, [], 'every acknowledged alteration is present with its value');
  const audit = readFileSync(join(dataDir, 'audit.log'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { entity: [string, string][] });
  const audited = new Set(audit.map((r) => r.entity[0]![1]));
  t.same(
    acked.filter((i) => !audited.has(`u${i}`)),
    [],
    'and each has its audit line',
  );
  await c2.close();
  second.child.kill('SIGTERM');
  t.equal(await second.exited, 0);
});

t.test('a truncated or corrupt state file stops the start, naming the file', async (t) => {
  const cwd = fresh();
  const dataDir = join(cwd, 'data');
  const store = new FileQuotaStore(dataDir, { compactAfterChanges: 1 });
  await store.load();
  await store.apply([{ entity: [['user', 'alice']], quota_key: 'request_rate', quota_value: 5 }], []);
  await store.close();
  const path = join(dataDir, 'quotas.json');
  t.ok(existsSync(path), 'compaction wrote the snapshot');
  const good = readFileSync(path);
  for (const [name, bytes] of [
    ['truncated', good.subarray(0, Math.floor(good.length / 2))],
    ['not a rivven state file', Buffer.from('{"hello": 1}')],
    [
      'an invalid quota inside',
      Buffer.from(JSON.stringify({ version: 1, quotas: [{ entity: [['user', '']], quota_key: 'request_rate', quota_value: 5 }] })),
    ],
    ['a null entry', Buffer.from(JSON.stringify({ version: 2, seq: 1, quotas: [null] }))],
  ] as const) {
    writeFileSync(path, bytes);
    const r = await run(['serve', '--port', '0', '--data-dir', dataDir], { cwd });
    t.equal(r.code, 1, `${name}: exit 1`);
    t.match(r.stdout + r.stderr, path, `${name}: the message names ${path}`);
    t.equal(readFileSync(path).toString(), bytes.toString(), `${name}: the file is left as it was`);
  }
});

t.test('run-time values win over rivven.yaml, survive restarts, and fall back to it when removed', async (t) => {
  const cwd = fresh();
  writeFileSync(join(cwd, 'rivven.yaml'), 'quotas:\n  defaults:\n    request_rate: 100\n');
  const dataDir = join(cwd, 'data');
  const start = () => serve(['--data-dir', dataDir], cwd);
  const quota = (port: number, ...args: string[]) => runInProcess(['quota', ...args, '--server', `127.0.0.1:${port}`]);
  const defaults = async (port: number) => JSON.parse((await quota(port, 'list', '--default', '--json')).stdout)[0].quotas.request_rate;

  let s = await start();
  t.equal(await defaults(s.port), 100, 'the yaml value');
  t.equal((await quota(s.port, 'set', '--default', '--request-rate', '7')).code, 0);
  t.equal((await quota(s.port, 'set', '--user', 'alice', '--produce-bytes-rate', '10000000', '--consume-bytes-rate', '20000000')).code, 0);
  s.child.kill('SIGTERM');
  await s.exited;

  s = await start();
  t.equal(await defaults(s.port), 7, 'the run-time value wins after a restart');
  t.same(JSON.parse((await quota(s.port, 'list', '--user', 'alice', '--json')).stdout), [
    { entity: [['user', 'alice']], quotas: { produce_bytes_rate: 10000000, consume_bytes_rate: 20000000 } },
  ]);
  t.equal((await quota(s.port, 'delete', '--default', '--quota', 'request_rate')).code, 0);
  t.equal(await defaults(s.port), 100, 'removed: back to the yaml value');
  s.child.kill('SIGTERM');
  await s.exited;

  s = await start();
  t.equal(await defaults(s.port), 100, 'and still after a restart');
  s.child.kill('SIGTERM');
  await s.exited;

  const audit = readFileSync(join(dataDir, 'audit.log'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  t.match(audit, [
    {
      principal: 'anonymous',
      client: /^rivven-cli /,
      entity: [['default', null]],
      quota_key: 'request_rate',
      old: null,
      new: 7,
      time: /^\d{4}-/,
    },
    { entity: [['user', 'alice']], quota_key: 'produce_bytes_rate', old: null, new: 10000000 },
    { entity: [['user', 'alice']], quota_key: 'consume_bytes_rate', old: null, new: 20000000 },
    { entity: [['default', null]], quota_key: 'request_rate', old: 7, new: null },
  ]);
  t.equal(audit.length, 4);
});

t.test('the file store: round trip, stale temp file, failed write changes nothing', async (t) => {
  const dataDir = join(fresh(), 'nested', 'data');
  const store = new FileQuotaStore(dataDir);
  t.same(await store.load(), [], 'a missing directory and file start empty');
  await store.apply([{ entity: [['client-id', 'c']], quota_key: 'request_rate', quota_value: 'unlimited' }], []);
  writeFileSync(join(dataDir, 'quotas.json.tmp'), 'half-written garbage');
  t.same(
    await store.load(),
    [{ entity: [['client-id', 'c']], quota_key: 'request_rate', quota_value: 'unlimited' }],
    'a leftover temp file is ignored',
  );
  t.notOk(existsSync(join(dataDir, 'quotas.json.tmp')), 'and removed');
  await store.close();
});
