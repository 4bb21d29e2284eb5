import t from 'tap';
import { QuotaTable } from '../../src/quota/quota-table.js';
import { MAX_PENDING_WRITES, QuotaAdmin } from '../../src/server/quota-admin.js';
import { GateStore } from '../helpers/gate-store.js';

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
