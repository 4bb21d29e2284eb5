// The grammar of quota values (src/quota/rate-value.ts) and the one validation every surface calls
// (src/quota/quota-value.ts), attacked directly: no server, no process.
import t from 'tap';
import {
  canonicalRate,
  formatAmount,
  formatRate,
  MAX_RATES,
  MAX_VALUE_CHARS,
  PERIOD_SECONDS,
  parseAmountValue,
  parseLimitValue,
  parseRateValue,
  QuotaValueError,
} from '../../src/quota/rate-value.js';
import { parseLimit } from '../../src/quota/quota-value.js';

const refused = (fn: () => unknown, detail: RegExp, what: string) => {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  t.type(err, QuotaValueError, `${what}: refused`);
  t.match(err, { code: 'INVALID_QUOTA_VALUE', detail }, `${what}: says why`);
};

t.test('numbers, units and lists parse to base units sorted from the shortest period', async (t) => {
  t.same(parseRateValue('request_rate', 10), [{ amount: 10, unit: 's' }]);
  t.same(parseRateValue('request_rate', 0.5), [{ amount: 0.5, unit: 's' }], 'a fraction is a rate');
  t.same(parseRateValue('request_rate', '10/min'), [{ amount: 10, unit: 'min' }]);
  t.same(parseRateValue('request_rate', ' 10 / MIN '), [{ amount: 10, unit: 'min' }], 'spaces and case do not matter');
  t.same(parseRateValue('request_rate', '\t10\u00a0/min\n'), [{ amount: 10, unit: 'min' }], 'tabs, no-break spaces, newlines');
  t.same(parseRateValue('request_rate', '5k'), [{ amount: 5000, unit: 's' }], 'count keys take k, m, g, t');
  t.same(parseRateValue('request_rate', '1e3/h'), [{ amount: 1000, unit: 'h' }]);
  t.same(parseRateValue('request_rate', '10000/d,100'), [
    { amount: 100, unit: 's' },
    { amount: 10000, unit: 'd' },
  ]);
  t.same(parseRateValue('produce_bytes_rate', ['100GB/d', '10MB/s']), [
    { amount: 10e6, unit: 's' },
    { amount: 100e9, unit: 'd' },
  ]);
  t.same(
    parseRateValue('request_rate', ['1/d', '2/h', '3/min', 4])!.map((r) => r.unit),
    ['s', 'min', 'h', 'd'],
  );
  t.equal(parseRateValue('request_rate', 'unlimited'), null);
  t.equal(parseRateValue('request_rate', ' Unlimited '), null);
  t.same(PERIOD_SECONDS, { s: 1, min: 60, h: 3600, d: 86400 });
  t.ok(Object.isFrozen(PERIOD_SECONDS));
});

t.test('every byte suffix on every unit, on byte keys; decimal is exact', async (t) => {
  const sizes: [string, number][] = [
    ['', 1],
    ['B', 1],
    ['k', 1e3],
    ['kB', 1e3],
    ['KB', 1e3],
    ['M', 1e6],
    ['MB', 1e6],
    ['mb', 1e6],
    ['GB', 1e9],
    ['TB', 1e12],
    ['Ki', 1024],
    ['KiB', 1024],
    ['kib', 1024],
    ['MiB', 2 ** 20],
    ['GiB', 2 ** 30],
    ['TiB', 2 ** 40],
  ];
  for (const unit of ['s', 'min', 'h', 'd'] as const) {
    for (const [suffix, size] of sizes) {
      for (const key of ['produce_bytes_rate', 'consume_bytes_rate']) {
        t.same(parseRateValue(key, `3${suffix}/${unit}`), [{ amount: 3 * size, unit }], `3${suffix}/${unit}`);
      }
    }
  }
  t.same(parseRateValue('produce_bytes_rate', '1.1kB'), [{ amount: 1100, unit: 's' }], 'no 1100.0000000000002');
  t.same(parseRateValue('produce_bytes_rate', '0.5KiB/min'), [{ amount: 512, unit: 'min' }]);
  t.equal(parseAmountValue('produce_bytes_burst', '10MiB'), 10 * 2 ** 20, 'byte bursts take suffixes');
});

t.test('byte suffixes only on byte keys; units of time only on rates', async (t) => {
  for (const suffix of ['B', 'kB', 'MiB', 'Ki', 'GB']) {
    refused(
      () => parseRateValue('request_rate', `5${suffix}/s`),
      /unknown unit .*byte units are for \*_bytes_\* keys/,
      `request_rate 5${suffix}`,
    );
    refused(() => parseAmountValue('max_in_flight', `5${suffix}`), /unknown unit/, `max_in_flight 5${suffix}`);
  }
  refused(() => parseAmountValue('max_in_flight', '5/s'), /max_in_flight is a whole count, with no unit of time/, 'max_in_flight 5/s');
  refused(() => parseAmountValue('max_in_flight', 2.5), /whole number/, 'max_in_flight 2.5');
  refused(() => parseAmountValue('max_in_flight', '1,2'), /not a list/, 'max_in_flight 1,2');
  refused(() => parseAmountValue('request_burst', '100/s'), /request_burst is an amount, with no unit of time/, 'a burst per second');
  refused(() => parseRateValue('request_burst', 1), /is an amount, not a rate/, 'a burst through the rate parser');
  refused(() => parseAmountValue('request_rate', 1), /is a rate, not an amount/, 'a rate through the amount parser');
  refused(
    () => parseAmountValue('produce_bytes_burst', 'lots'),
    /"lots" is not an amount; use a number \(10MB, 10MiB\) or "unlimited"/,
    'a bad burst',
  );
  refused(() => parseAmountValue('max_in_flight', 'many'), /"many" is not a whole count/, 'a bad count');
  t.equal(parseAmountValue('max_in_flight', '5k'), 5000);
  t.equal(parseAmountValue('max_in_flight', 'unlimited'), null);
  t.equal(parseLimitValue('request_burst', 7), 7);
  t.same(parseLimitValue('request_rate', 7), [{ amount: 7, unit: 's' }]);
});

t.test('bad values: units, amounts, lists', async () => {
  const key = 'produce_bytes_rate';
  refused(() => parseRateValue(key, '10/week'), /unknown unit "week"; use s, min, h or d/, 'unknown unit');
  refused(() => parseRateValue(key, '10/'), /unknown unit ""/, 'an empty unit');
  refused(() => parseRateValue(key, '10XB'), /unknown unit "xb"/, 'unknown byte suffix');
  refused(() => parseRateValue('request_rate', '10min'), /a unit of time follows a slash \(10\/min\)/, '10min');
  refused(() => parseRateValue(key, 0), /must be greater than 0/, '0');
  refused(() => parseRateValue(key, -0), /must be greater than 0/, '-0');
  refused(() => parseRateValue(key, '-5/s'), /must be greater than 0/, '-5/s');
  refused(() => parseRateValue(key, '0/min'), /greater than 0/, '0/min');
  refused(() => parseRateValue(key, '1e-400'), /greater than 0/, 'a number that underflows to 0');
  refused(() => parseRateValue(key, Number.NaN), /NaN is not a number/, 'NaN');
  refused(() => parseRateValue(key, 'NaN'), /is not a rate/, '"NaN"');
  refused(() => parseRateValue(key, Number.POSITIVE_INFINITY), /too large.*"unlimited"/, 'Infinity');
  refused(() => parseRateValue(key, 'Infinity'), /is not a rate/, '"Infinity"');
  refused(() => parseRateValue(key, '1e400'), /too large/, '1e400');
  refused(() => parseRateValue(key, 1e300), /too large/, '1e300');
  refused(() => parseRateValue(key, '9007199254740992'), /too large; the largest rate is 9007199254740991/, '2^53');
  refused(() => parseRateValue(key, '100000TB/d'), /too large/, '100000TB');
  refused(() => parseRateValue(key, '9999999TiB/d'), /too large/, 'a huge binary amount');
  refused(() => parseRateValue(key, '1e99999/s'), /is not a rate/, 'an exponent past 4 digits');
  refused(() => parseRateValue(key, '10/s,20/s'), /two rates per s; each unit at most once/, 'duplicate units');
  refused(() => parseRateValue(key, ['10', '20/s']), /two rates per s/, 'a plain number is per second');
  refused(() => parseRateValue(key, '1/s,2/min,3/h,4/d,5/s'), new RegExp(`5 rates in one value; at most ${MAX_RATES}`), 'five rates');
  refused(() => parseRateValue(key, '10/s,unlimited'), /"unlimited" cannot be part of a list/, 'unlimited in a list');
  refused(() => parseRateValue(key, ['unlimited']), /"unlimited" cannot be part of a list/, 'unlimited in an array');
  refused(() => parseRateValue(key, []), /an empty list/, 'an empty list');
  refused(() => parseRateValue(key, ''), /"" is not a rate/, 'an empty string');
  refused(() => parseRateValue(key, '10/s,'), /"" is not a rate/, 'a stray comma');
  refused(() => parseRateValue(key, [['10/s']]), /a list inside a list/, 'a nested array');
  refused(() => parseRateValue(key, ['10/s,1/d', '5/h']), /a list element is a list/, 'a comma list inside an array');
  refused(() => parseRateValue(key, [{ amount: 1 }]), /a list element is object/, 'a map in a list');
  refused(() => parseRateValue(key, true), /boolean is not a rate/, 'a boolean');
  refused(() => parseRateValue(key, null), /object is not a rate/, 'null');
  refused(() => parseRateValue(key, { unit: 's' }), /object is not a rate/, 'a map');
  refused(() => parseRateValue(key, '\u0661\u0660/s'), /is not a rate/, 'Arabic-Indic digits');
  refused(() => parseRateValue(key, '１０/s'), /is not a rate/, 'full-width digits');
  refused(() => parseRateValue(key, '10\u202e/s'), /\\u202e/, 'a bidi override is escaped in the message');
});

t.test('hostile sizes cost nothing', async (t) => {
  const key = 'request_rate';
  refused(() => parseRateValue(key, '1'.repeat(MAX_VALUE_CHARS + 1)), /at most 256 characters/, 'a long string');
  refused(() => parseRateValue(key, `${'1,'.repeat(500_000)}1`), /at most 256 characters/, 'a million commas');
  refused(() => parseRateValue(key, new Array(1_000_000).fill('1/s')), /1000000 rates in one value/, 'a huge array, refused by its length');
  let deep: unknown = '1/s';
  for (let i = 0; i < 100_000; i++) deep = [deep];
  refused(() => parseRateValue(key, deep), /a list inside a list/, 'a list 100,000 deep: never walked');
  refused(() => parseRateValue(key, ['1/s', 'x'.repeat(10_000_000)]), /at most 256 characters/, 'a long element');
  refused(() => parseRateValue(key, `1${' '.repeat(MAX_VALUE_CHARS - 3)}x`), /unknown unit "x"/, 'spaces before garbage');
  t.same(parseRateValue(key, `${' '.repeat(MAX_VALUE_CHARS - 5)}10/s`), [{ amount: 10, unit: 's' }], 'a value of exactly the limit');
});

t.test('canonical form: base units, sorted, a per-second element as a plain number', async (t) => {
  const c = (key: string, raw: unknown) => canonicalRate(parseRateValue(key, raw)!);
  t.equal(c('request_rate', 10), 10);
  t.equal(c('request_rate', '10/s'), 10, 'a single per-second rate is a plain number');
  t.equal(c('request_rate', '0.5'), 0.5);
  t.equal(c('request_rate', '10/min'), '10/min');
  t.equal(c('produce_bytes_rate', '1MB/d'), '1000000/d');
  t.same(c('produce_bytes_rate', '100GB/d,10MB/s'), [10_000_000, '100000000000/d']);
  t.same(c('request_rate', ['5/h', '1/min']), ['1/min', '5/h']);
  t.same(
    canonicalRate([
      { amount: 3, unit: 'd' },
      { amount: 2, unit: 's' },
    ]),
    [2, '3/d'],
    'sorts an unsorted list too',
  );
  for (const raw of ['10/min', '100GB/d,10MB/s', '0.25/h', ['1/s', '2/min', '3/h', '4/d'], '1e-4/d']) {
    const list = parseRateValue('produce_bytes_rate', raw)!;
    t.same(
      parseRateValue('produce_bytes_rate', canonicalRate(list)),
      list,
      `${JSON.stringify(raw)}: the canonical form parses back to itself`,
    );
  }
});

t.test("tables print the operator's unit", async (t) => {
  const f = (key: string, raw: unknown) => formatRate(key, parseRateValue(key, raw));
  t.equal(f('request_rate', '10/min'), '10/min');
  t.equal(f('request_rate', 5), '5/s');
  t.equal(f('produce_bytes_rate', '100GB/d'), '100GB/d');
  t.equal(f('produce_bytes_rate', '10MB/s,100GB/d'), '10MB/s,100GB/d');
  t.equal(f('produce_bytes_rate', '10MiB/s'), '10MiB/s');
  t.equal(f('produce_bytes_rate', 1500), '1500B/s');
  t.equal(f('produce_bytes_rate', 'unlimited'), 'unlimited');
  t.equal(formatAmount('produce_bytes_burst', 2 ** 30), '1GiB');
  t.equal(formatAmount('request_burst', 2 ** 30), String(2 ** 30), 'a count has no byte unit');
  for (const raw of ['10/min', '10MB/s,100GB/d', '3KiB/h', '1500']) {
    t.same(
      parseRateValue('produce_bytes_rate', f('produce_bytes_rate', raw)),
      parseRateValue('produce_bytes_rate', raw),
      `${raw}: re-enterable`,
    );
  }
});

t.test('parseLimit returns what the quota table holds: a number for one per-second rate, else the rates', async (t) => {
  t.equal(parseLimit('request_rate', '5k'), 5000);
  t.equal(parseLimit('request_rate', '10/s'), 10);
  t.equal(parseLimit('request_rate', ['10/s']), 10, 'a one-element per-second list is a plain number');
  t.equal(parseLimit('produce_bytes_rate', '10MiB'), 10 * 2 ** 20);
  t.equal(parseLimit('request_rate', 'unlimited'), Infinity);
  t.equal(parseLimit('max_in_flight', 3), 3);
  t.equal(parseLimit('request_burst', '200'), 200);
  // What the gate refused until the buckets of several periods landed: every form now reaches the core.
  const held: [string, unknown, unknown][] = [
    ['request_rate', '10/min', [{ amount: 10, unit: 'min' }]],
    [
      'request_rate',
      '100/s,10000/d',
      [
        { amount: 100, unit: 's' },
        { amount: 10000, unit: 'd' },
      ],
    ],
    [
      'request_rate',
      ['10000/d', 100],
      [
        { amount: 100, unit: 's' },
        { amount: 10000, unit: 'd' },
      ],
    ],
    ['request_rate', 0.5, 0.5],
    ['request_rate', '1.5', 1.5],
    ['request_rate', '0.17/s', 0.17],
    ['produce_bytes_rate', '1.5B', 1.5],
    [
      'produce_bytes_rate',
      '10MB/s,100GB/d',
      [
        { amount: 1e7, unit: 's' },
        { amount: 1e11, unit: 'd' },
      ],
    ],
    ['request_burst', 1.5, 1.5],
  ];
  for (const [key, raw, want] of held) t.same(parseLimit(key, raw), want, `${key} ${JSON.stringify(raw)}`);
  const list = parseLimit('request_rate', '5/h,1/min');
  t.ok(Object.isFrozen(list), 'a held list is frozen: the table shares it');
  // The refusals stay: the grammar's, through the one entry point.
  refused(() => parseLimit('request_rate', '1/s,unlimited'), /cannot be part of a list/, 'unlimited in a list');
  refused(() => parseLimit('request_rate', '1/s,2/s'), /two rates per s/, 'duplicate units');
  refused(() => parseLimit('request_rate', '1/s,1/min,1/h,1/d,2/d'), /5 rates in one value; at most 4/, 'more than 4');
  refused(() => parseLimit('request_rate', '10/week'), /unknown unit "week"/, 'unknown unit');
  refused(() => parseLimit('request_rate', 0), /greater than 0/, '0');
  refused(() => parseLimit('request_rate', '-1/min'), /greater than 0/, 'negative');
  refused(() => parseLimit('request_rate', '1e400/min'), /too large/, 'not finite');
  refused(() => parseLimit('max_in_flight', 1.5), /whole number/, 'max_in_flight stays a whole count');
  refused(() => parseLimit('max_in_flight', '5/min'), /with no unit of time/, 'max_in_flight takes no unit');
  refused(() => parseLimit('request_burst', '5/min'), /with no unit of time/, 'a burst stays an amount');
});

t.test('a rate below one call in about 31 years is refused: far below it the bucket arithmetic fails open', async (t) => {
  t.same(parseRateValue('request_rate', '1e-9'), [{ amount: 1e-9, unit: 's' }], 'the smallest rate');
  t.same(parseRateValue('request_rate', '0.0000001/min'), [{ amount: 1e-7, unit: 'min' }], 'per minute, above it');
  for (const v of ['1e-10', 1e-19, '1e-300/s', '0.00001/d', '10/s,1e-12/d']) {
    t.throws(() => parseRateValue('request_rate', v), { code: 'INVALID_QUOTA_VALUE', message: /below the smallest rate/ }, String(v));
  }
});
