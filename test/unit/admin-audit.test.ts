import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { QuotaTable } from '../../src/quota/quota-table.js';
import { MAX_PENDING_WRITES, QuotaAdmin } from '../../src/server/quota-admin.js';
import { FileQuotaStore } from '../../src/store/file-quota-store.js';
import { MemoryQuotaStore, type ResetAuditRecord } from '../../src/store/quota-store.js';
import { GateStore } from '../helpers/gate-store.js';
import { serverWithClient } from '../helpers/server.js';

t.test('ResetUsage is in audit.log with its principal and client, before the usage is forgiven', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'rivven-reset-audit-'));
  const store = new FileQuotaStore(dataDir);
  await store.load();
  const { c } = await serverWithClient(t, { quotas: { defaults: { request_rate: 1 } } }, store, { clientName: 'ops-laptop' });
  await c.recordRequest({ user: 'debtor', count: 100 });
  t.equal(await c.resetUsage([['user', 'debtor']]), 1);
  const lines = readFileSync(join(dataDir, 'audit.log'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as ResetAuditRecord);
  t.match(lines.at(-1), { principal: 'anonymous', client: 'ops-laptop', action: 'reset_usage', entities: [['user', 'debtor']] });
});

class NoAuditStore extends MemoryQuotaStore {
  override async recordAudit(): Promise<void> {
    throw new Error('disk full');
  }
}

t.test('a reset whose audit record cannot be written fails with STORAGE_ERROR and forgives nothing', async (t) => {
  const { c } = await serverWithClient(t, { quotas: { defaults: { request_rate: 1 } } }, new NoAuditStore());
  const first = await c.recordRequest({ user: 'debtor', count: 100 });
  t.match(await c.resetUsage([['user', 'debtor']]).catch((e: unknown) => e), { code: 'STORAGE_ERROR', message: /disk full/ });
  const after = await c.recordRequest({ user: 'debtor' });
  t.ok(after.throttleTimeMs >= first.throttleTimeMs, 'still in debt');
});

t.test('admin writes waiting for the store are bounded: past MAX_PENDING_WRITES, OVERLOADED', async (t) => {
  const store = new GateStore();
  const admin = new QuotaAdmin(new QuotaTable({}), store);
  store.closeGate();
  const alter = (i: number) =>
    admin.alter([{ ref: { kind: 'user', user: `u${i}` }, key: 'request_rate', value: 1, shadow: false }], false, 'op');
  const waiting = Array.from({ length: MAX_PENDING_WRITES }, (_, i) => alter(i));
  await t.rejects(alter(-1), { code: 'OVERLOADED' });
  await t.rejects(admin.auditReset([['user', 'x']], 'op', null), { code: 'OVERLOADED' });
  t.equal(admin.writesRefused, 2);
  store.openGate();
  t.same(
    await Promise.all(waiting),
    waiting.map(() => 1),
  );
  t.equal(await alter(-1), 1, 'room again');
});
