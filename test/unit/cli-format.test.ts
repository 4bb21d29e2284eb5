// How the CLI prints numbers and limits (src/cli/numbers.ts, src/cli/quota-values.ts), in process.
import t from 'tap';
import { formatCount, formatDuration, formatNumber, formatPercent } from '../../src/cli/numbers.js';
import { formatMeasured, formatQuotaValue } from '../../src/cli/quota-values.js';

t.test('numbers', async (t) => {
  t.equal(formatNumber(42), '42');
  t.equal(formatNumber(2.3456), '2.35');
  t.equal(formatNumber(42.46), '42.5');
  t.equal(formatNumber(123.6), '124');
  t.equal(formatNumber(2.5), '2.5', 'trailing zeros dropped');
  t.equal(formatNumber(9.999), '10');
  t.equal(formatCount(7), '7');
  t.equal(formatCount('7'), '?', 'a count from another process that is not one');
  t.equal(formatCount(1.5), '?');
  t.equal(formatPercent(0.734), '73%');
  t.equal(formatPercent(2), '200%');
  t.equal(formatDuration(999, 'coarse'), 'now');
  t.equal(formatDuration(42_000, 'coarse'), '42s');
  t.equal(formatDuration(300_000, 'coarse'), '5m');
  t.equal(formatDuration(3 * 3_600_000, 'coarse'), '3h');
  t.equal(formatDuration(12.4, 'fine'), '12ms');
  t.equal(formatDuration(1500, 'fine'), '1.5s');
  t.equal(formatDuration(Number.NaN, 'fine'), '?');
});

t.test("limits in the operator's unit, the same in every table", async (t) => {
  t.equal(formatQuotaValue('produce_bytes_rate', 10 * 2 ** 20), '10MiB/s');
  t.equal(formatQuotaValue('produce_bytes_rate', 10e6), '10MB/s');
  t.equal(formatQuotaValue('consume_bytes_rate', 1500), '1500B/s');
  t.equal(formatQuotaValue('produce_bytes_burst', 2 ** 30), '1GiB');
  t.equal(formatQuotaValue('request_rate', 5000), '5000/s');
  t.equal(formatQuotaValue('request_burst', 200), '200');
  t.equal(formatQuotaValue('max_in_flight', 5), '5');
  t.equal(formatQuotaValue('request_rate', 'unlimited'), 'unlimited');
  t.equal(formatQuotaValue('request_rate', Infinity), 'unlimited');
  t.equal(formatQuotaValue('request_rate', undefined), '-');
  t.equal(formatQuotaValue('tier', 'pro'), 'pro');
  t.equal(formatQuotaValue('request_rate', 2.5), '2.5/s', 'an adaptive limit, approximate');
  t.equal(formatQuotaValue('request_rate', '10/min'), '10/min', 'a canonical string');
  t.equal(formatQuotaValue('produce_bytes_rate', [10_000_000, '100000000000/d']), '10MB/s,100GB/d', 'a canonical list');
  t.equal(formatQuotaValue('request_rate', 'bogus'), 'bogus', 'not of the grammar: shown as it came');
  t.equal(formatMeasured('produce_bytes_rate', 44040192, 50 * 2 ** 20), '42MiB/s');
  t.equal(formatMeasured('produce_bytes_rate', 44040192, 50e6), '44MB/s');
  t.equal(formatMeasured('max_in_flight', 3, 5), '3 held');
});
