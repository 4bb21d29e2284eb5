import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { FileQuotaStore } from '../../src/store/file-quota-store.js';
import { MemoryQuotaStore, type ResetAuditRecord } from '../../src/store/quota-store.js';
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
