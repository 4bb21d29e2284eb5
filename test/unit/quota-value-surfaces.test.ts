// The one validation of quota values as each surface uses it: AlterQuotas' decode, the stores' load (the file
// and memory stores through QuotaAdmin.load, the shared Redis store through redis-values), the CLI's flags.
// rivven.yaml and RIVVEN_* are in config.test.ts; the grammar itself in rate-value.test.ts.
import t from 'tap';
import { UsageError } from '../../src/cli/exit-codes.js';
import { parseQuotaValue } from '../../src/cli/quota-values.js';
import { RivvenError } from '../../src/protocol/error-codes.js';
import { decode } from '../../src/protocol/messages/alter-quotas.js';
import { QuotaTable } from '../../src/quota/quota-table.js';
import { QuotaAdmin } from '../../src/server/quota-admin.js';
import { MemoryQuotaStore, type StoredQuota } from '../../src/store/quota-store.js';
import { parseStored } from '../../src/store/redis-values.js';

const alteration = (quota_value: unknown, quota_key = 'request_rate') => ({ entity: [['user', 'a']], quota_key, quota_value });
const decodeError = (alterations: unknown[]): unknown => {
  try {
    decode({ type: 'AlterQuotas', alterations });
  } catch (err) {
    return err;
  }
  return undefined;
};

t.test('AlterQuotas takes every form of the grammar, and names the bad alteration', async (t) => {
  const { alterations } = decode({
    type: 'AlterQuotas',
    alterations: [
      alteration('10/s'),
      alteration('10MiB', 'produce_bytes_rate'),
      alteration(['5k/s'], 'consume_bytes_rate'),
      alteration('unlimited', 'max_in_flight'),
      alteration(null, 'request_burst'),
    ],
  });
  t.same(
    alterations.map((a) => a.value),
    [10, 10 * 2 ** 20, 5000, Infinity, undefined],
  );
  const many = decode({
    type: 'AlterQuotas',
    alterations: [alteration('10MB/min', 'produce_bytes_rate'), alteration(['100/s', '10000/d']), alteration(0.5, 'request_burst')],
  });
  t.same(
    many.alterations.map((a) => a.value),
    [
      [{ amount: 1e7, unit: 'min' }],
      [
        { amount: 100, unit: 's' },
        { amount: 10000, unit: 'd' },
      ],
      0.5,
    ],
  );
  const err = decodeError([alteration(5), alteration('10MB/fortnight', 'produce_bytes_rate')]);
  t.type(err, RivvenError);
  t.match(err, { code: 'INVALID_QUOTA_VALUE', index: 1, message: /^produce_bytes_rate: "10MB\/fortnight": unknown unit "fortnight"/ });
  t.match(decodeError([alteration('5/s', 'max_in_flight')]), { code: 'INVALID_QUOTA_VALUE', message: /whole count/ });
  t.match(decodeError([alteration('1/s,2/s')]), { code: 'INVALID_QUOTA_VALUE', message: /two rates per s/ });
  t.match(decodeError([alteration(['10/s', 'unlimited'])]), { code: 'INVALID_QUOTA_VALUE', message: /cannot be part of a list/ });
});

t.test('the shared store reads values as AlterQuotas does, and keeps their canonical form', async (t) => {
  const stored = parseStored(JSON.stringify(alteration('10MiB/s', 'produce_bytes_rate')));
  t.same(stored, { entity: [['user', 'a']], quota_key: 'produce_bytes_rate', quota_value: 10 * 2 ** 20 });
  t.same(parseStored(JSON.stringify(alteration('10/h'))), { entity: [['user', 'a']], quota_key: 'request_rate', quota_value: '10/h' });
  t.same(parseStored(JSON.stringify(alteration('10000/d,100/s'))), {
    entity: [['user', 'a']],
    quota_key: 'request_rate',
    quota_value: [100, '10000/d'],
  });
  t.match(parseStored(JSON.stringify(alteration('10/h,unlimited'))), /cannot be part of a list/);
  t.match(parseStored(JSON.stringify(alteration(0))), /greater than 0/);
});

class Preloaded extends MemoryQuotaStore {
  constructor(values: StoredQuota[]) {
    super();
    for (const [i, v] of values.entries()) this.state.set(String(i), v);
  }
}

t.test('a store loaded at start goes through the same validation', async (t) => {
  const good = new QuotaAdmin(
    new QuotaTable(),
    new Preloaded([alteration('1k') as StoredQuota, alteration(7, 'max_in_flight') as StoredQuota]),
  );
  t.equal(await good.load(), 2);
  t.same(good.table.getValue({ kind: 'user', user: 'a' }, 'request_rate'), 1000, 'held as the number the core decides on');
  const bad = new QuotaAdmin(new QuotaTable(), new Preloaded([alteration(2.5, 'max_in_flight') as StoredQuota]));
  await t.rejects(bad.load(), /entry 0 is not a valid quota \(max_in_flight: 2.5 must come to a whole number/);
  const lists = new QuotaAdmin(new QuotaTable(), new Preloaded([alteration(['1/s', '100/d']) as StoredQuota]));
  t.equal(await lists.load(), 1);
  t.same(lists.table.getValue({ kind: 'user', user: 'a' }, 'request_rate'), [1, '100/d'], 'a list, canonical');
  const dup = new QuotaAdmin(new QuotaTable(), new Preloaded([alteration(['1/s', '100/s']) as StoredQuota]));
  await t.rejects(dup.load(), /entry 0 is not a valid quota \(request_rate: .*two rates per s/);
});

t.test('the CLI names the flag', async (t) => {
  t.equal(parseQuotaValue('produce_bytes_rate', '10MB/s', '--produce-bytes-rate'), 10e6);
  t.equal(parseQuotaValue('request_rate', 'UNLIMITED', '--request-rate'), 'unlimited');
  t.equal(parseQuotaValue('request_rate', '10/min', '--request-rate'), '10/min');
  t.same(parseQuotaValue('produce_bytes_rate', '10MB/s,100GB/d', '--produce-bytes-rate'), [1e7, '100000000000/d']);
  t.equal(parseQuotaValue('request_rate', '0.17', '--request-rate'), 0.17);
  t.throws(
    () => parseQuotaValue('request_rate', '10/fortnight', '--request-rate'),
    new UsageError('--request-rate: "10/fortnight": unknown unit "fortnight"; use s, min, h or d'),
  );
  t.throws(() => parseQuotaValue('request_burst', '10/s', '--request-burst'), /^--request-burst: "10\/s": request_burst is an amount/);
});

t.test('a Redis value or change entry too long to parse without holding the event loop is refused before JSON.parse', async (t) => {
  const { MAX_CHANGES_CHARS, MAX_STORED_CHARS, parseChanges } = await import('../../src/store/redis-values.js');
  const stored = JSON.stringify({ entity: [['user', 'a'.repeat(MAX_STORED_CHARS)]], quota_key: 'request_rate', quota_value: 1 });
  t.match(parseStored(stored), /^longer than 65536 characters/);
  t.match(parseChanges(`[${' '.repeat(MAX_CHANGES_CHARS)}]`), /^longer than/);
  t.equal(typeof parseStored(JSON.stringify({ entity: [['user', 'a']], quota_key: 'request_rate', quota_value: 1 })), 'object');
});
