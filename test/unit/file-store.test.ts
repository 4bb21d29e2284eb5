import { appendFileSync, existsSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { audit, set } from '../helpers/store-fixtures.js';
import { writeAll, type WriteAll } from '../../src/store/append-file.js';
import { FileQuotaStore } from '../../src/store/file-quota-store.js';
import type { AuditRecord } from '../../src/store/quota-store.js';

const fresh = () => join(mkdtempSync(join(tmpdir(), 'rivven-store-')), 'data');
const lines = (path: string) => (existsSync(path) ? readFileSync(path, 'utf8') : '').split('\n').filter((l) => l !== '');

t.test('changes go to the log; compaction folds them into the snapshot and keeps later lines', async (t) => {
  const dir = fresh();
  const store = new FileQuotaStore(dir, { compactAfterChanges: 10 });
  await store.load();
  for (let i = 0; i < 25; i++) {
    await store.apply([set(`u${i}`, i + 1)], [audit(`u${i}`)]);
    // Each compaction ends before the next change: how many changes land during one depends on the disk.
    await store.settled();
  }
  await store.close();
  t.equal(store.compactions, 2, 'compacted after 10 and 20 changes');
  t.ok(lines(store.logPath).length <= 5, `the log holds only what came after (${lines(store.logPath).length} lines)`);
  const snapshot = JSON.parse(readFileSync(store.statePath, 'utf8')) as { version: number; seq: number; quotas: unknown[] };
  t.equal(snapshot.version, 2);
  t.equal(lines(store.auditPath).length, 25, 'one audit line per change');
  const again = new FileQuotaStore(dir);
  const loaded = await again.load();
  t.equal(loaded.length, 25, 'snapshot + log give every value back');
  t.same(
    loaded.find((q) => q.entity[0]![1] === 'u24'),
    set('u24', 25),
  );
  await again.close();
});

t.test('a change that lands while a compaction runs stays in the rewritten log', async (t) => {
  const dir = fresh();
  const store = new FileQuotaStore(dir, { compactAfterChanges: 10 });
  await store.load();
  for (let i = 1; i <= 10; i++) await store.apply([set(`u${i}`, i)], []);
  // The 10th change started a compaction; its snapshot is written on the disk's time, so the 11th change queues
  // its log append before the compaction's log rewrite does.
  const eleventh = store.apply([set('u11', 11)], []);
  await store.settled();
  await eleventh;
  await store.close();
  t.equal(store.compactions, 1);
  const snapshot = JSON.parse(readFileSync(store.statePath, 'utf8')) as { seq: number };
  t.equal(snapshot.seq, 10, 'the snapshot covers the first 10 changes');
  t.same(
    lines(store.logPath).map((l) => (JSON.parse(l) as { seq: number }).seq),
    [11],
    'the log keeps the change that came during the compaction',
  );
  const again = new FileQuotaStore(dir);
  t.equal((await again.load()).length, 11, 'snapshot + log give every value back');
  await again.close();
});

t.test('a crash between the snapshot and the log rewrite: lines the snapshot covers are skipped by seq', async (t) => {
  const dir = fresh();
  const store = new FileQuotaStore(dir, { compactAfterChanges: 1_000_000 });
  await store.load();
  await store.apply([set('a', 1)], []);
  await store.apply([set('a', null), set('b', 2)], []);
  await store.close();
  // The snapshot as a compaction at seq 2 would write it, with the whole log still beside it.
  writeFileSync(store.statePath, JSON.stringify({ version: 2, seq: 2, quotas: [set('b', 2)] }));
  appendFileSync(store.logPath, `${JSON.stringify({ seq: 3, changes: [set('c', 3)] })}\n`);
  const loaded = await new FileQuotaStore(dir).load();
  t.same(loaded.map((q) => q.entity[0]![1]).sort(), ['b', 'c']);
});

t.test('a torn last log line (a crash mid-append) is cut off at load; a bad line in the middle stops the start', async (t) => {
  const dir = fresh();
  const store = new FileQuotaStore(dir);
  await store.load();
  await store.apply([set('a', 1)], []);
  await store.close();
  appendFileSync(store.logPath, '{"seq":2,"changes":[{"entity":[["user","b"]],"quo');
  const again = new FileQuotaStore(dir);
  t.same(await again.load(), [set('a', 1)], 'the torn change (never acknowledged) is not applied');
  t.ok(again.repairedBytes > 0, 'and was cut off');
  await again.apply([set('b', 2)], []);
  await again.close();
  t.same(
    lines(store.logPath).map((l) => (JSON.parse(l) as { seq: number }).seq),
    [1, 2],
    'the next line starts clean',
  );

  writeFileSync(store.logPath, `not json\n${JSON.stringify({ seq: 2, changes: [] })}\n`);
  await t.rejects(new FileQuotaStore(dir).load(), { message: new RegExp(`${store.logPath}: line 1 is corrupt`) });
});

t.test('audit.log deleted or renamed (logrotate) is reopened: the next change has its line in the new file', async (t) => {
  const dir = fresh();
  const store = new FileQuotaStore(dir);
  await store.load();
  await store.apply([set('a', 1)], [audit('a')]);
  rmSync(store.auditPath);
  await store.apply([set('b', 1)], [audit('b')]);
  t.same(
    lines(store.auditPath).map((l) => (JSON.parse(l) as AuditRecord).entity[0]![1]),
    ['b'],
    'deleted: a new file with the new line',
  );
  renameSync(store.auditPath, `${store.auditPath}.1`);
  await store.apply([set('c', 1)], [audit('c')]);
  t.same(lines(store.auditPath).length, 1, 'renamed: the line goes to the path, not the rotated file');
  t.same(lines(`${store.auditPath}.1`).length, 1);
  await store.close();
});

t.test('a full disk: a failed append leaves no torn line, changes nothing, and the next append is clean', async (t) => {
  const dir = fresh();
  let failAt: 'audit' | 'log' | null = null;
  // Writes half of the data for real, then fails as ENOSPC does.
  const write: WriteAll = async (handle, data, position) => {
    const target = (await handle.stat()).size;
    const isAudit = data.toString().includes('"principal"');
    if ((failAt === 'audit' && isAudit) || (failAt === 'log' && !isAudit)) {
      await writeAll(handle, data.subarray(0, Math.floor(data.length / 2)), target);
      throw Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
    }
    return writeAll(handle, data, position);
  };
  const store = new FileQuotaStore(dir, { write });
  await store.load();
  await store.apply([set('a', 1)], [audit('a')]);
  for (const where of ['audit', 'log'] as const) {
    failAt = where;
    await t.rejects(store.apply([set(`x-${where}`, 1)], [audit(`x-${where}`)]), /ENOSPC/, `${where} write fails`);
    failAt = null;
    t.same(
      lines(store.auditPath).map((l) => JSON.parse(l) as unknown).length,
      1,
      `${where}: the audit log is whole, without the failed change`,
    );
    t.same(
      lines(store.logPath).map((l) => JSON.parse(l) as unknown).length,
      1,
      `${where}: the quota log is whole, without the failed change`,
    );
  }
  await store.apply([set('b', 1)], [audit('b')]);
  t.equal(lines(store.auditPath).length, 2, 'the next append is its own line');
  await store.close();
  t.same(
    (await new FileQuotaStore(dir).load()).map((q) => q.entity[0]![1]),
    ['a', 'b'],
    'after a restart: exactly the applied changes',
  );
});
