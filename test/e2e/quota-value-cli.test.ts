// Every form of a quota value through the real CLI (bin/rivven against a server on port 0 with a manual clock):
// `quota set` and `tier set` take per-minute rates, fractions and lists; --json carries the canonical form, the
// tables the operator's unit; the value set by the CLI decides the throttle.
import t from 'tap';
import { QuotaClient } from '../../src/client/quota-client.js';
import { run } from '../helpers/cli.js';
import { quotaCliAgainstServer } from '../helpers/quota-cli.js';

const { server, quota, listJson } = quotaCliAgainstServer();
const tier = (...args: string[]) => run(['tier', ...args], { env: { RIVVEN_SERVER: `127.0.0.1:${server().port}` } });

t.test('--request-rate 10/min: listed as 10/min, and the eleventh call at once is throttled for the minute', async (t) => {
  const set = await quota('set', '--user', 'alice', '--request-rate', '10/min');
  t.equal(set.code, 0, set.stderr);
  t.equal(set.stdout, 'set 1 quota(s) for user:alice: request_rate=10/min\n');
  t.same(await listJson('--user', 'alice'), [{ entity: [['user', 'alice']], quotas: { request_rate: '10/min' } }]);
  const table = await quota('list', '--user', 'alice');
  t.equal(table.stdout, 'ENTITY      PRODUCE  CONSUME  REQUESTS\nuser:alice  -        -        10/min\n');
  const c = await QuotaClient.connect({ port: server().port });
  t.teardown(() => c.close());
  for (let i = 0; i < 10; i++) t.equal((await c.recordRequest({ user: 'alice' })).throttleTimeMs, 0, `call ${i + 1} fits`);
  const eleventh = await c.recordRequest({ user: 'alice' });
  t.same([eleventh.throttleTimeMs, eleventh.period], [6000, 'min'], 'the 11th waits one call at 10/min, the minute named');
  // The throttled call was recorded too (eleven in a bucket of ten): two calls' drain later, one more fits.
  server().clock.advance(11_999);
  t.ok((await c.recordRequest({ user: 'alice', admit: true })).throttleTimeMs > 0, '1 ms too early: refused (admit mode records nothing)');
  server().clock.advance(1);
  t.equal((await c.recordRequest({ user: 'alice' })).throttleTimeMs, 0, '12 s later the bucket has room again');
});

t.test('lists and fractions: canonical in --json, in the operator unit in the table', async (t) => {
  const set = await quota(
    'set',
    '--user',
    'bob',
    '--produce-bytes-rate',
    '10MB/s,100GB/d',
    '--request-rate',
    '0.125',
    '--consume-bytes-rate',
    '5MiB/h',
  );
  t.equal(set.code, 0, set.stderr);
  t.match(set.stdout, /produce_bytes_rate=10MB\/s,100GB\/d, consume_bytes_rate=5MiB\/h, request_rate=0\.125\/s/);
  t.same(await listJson('--user', 'bob'), [
    {
      entity: [['user', 'bob']],
      quotas: { produce_bytes_rate: [1e7, '100000000000/d'], consume_bytes_rate: '5242880/h', request_rate: 0.125 },
    },
  ]);
  const table = await quota('list', '--user', 'bob');
  t.equal(table.stdout, 'ENTITY    PRODUCE         CONSUME  REQUESTS\nuser:bob  10MB/s,100GB/d  5MiB/h   0.125/s\n', 'exact, not rounded');
});

t.test('tier set and tier list take the same forms', async (t) => {
  const set = await tier('set', 'free', '--request-rate', '20/min', '--produce-bytes-rate', '1MB/s,10GB/d', '--request-burst', '5');
  t.equal(set.code, 0, set.stderr);
  const list = await tier('list', 'free');
  t.equal(list.stdout, 'ENTITY     PRODUCE       CONSUME  REQUESTS  POLICY\ntier:free  1MB/s,10GB/d  -        20/min    burst request=5\n');
  const json = JSON.parse((await tier('list', 'free', '--json')).stdout) as unknown;
  t.same(json, [
    { entity: [['tier', 'free']], quotas: { produce_bytes_rate: [1e6, '10000000000/d'], request_rate: '20/min', request_burst: 5 } },
  ]);
});

t.test('a bad value is a usage error naming the flag, and nothing is sent', async (t) => {
  const cases: [string[], RegExp][] = [
    [['--request-rate', '10/fortnight'], /--request-rate: "10\/fortnight": unknown unit "fortnight"/],
    [['--request-rate', '0'], /--request-rate: "0" must be greater than 0/],
    [['--request-rate', '10/s,20/s'], /--request-rate: .*two rates per s/],
    [['--request-rate', '1/s,1/min,1/h,1/d,2/d'], /--request-rate: 5 rates in one value; at most 4/],
    [['--request-rate', '10/s,unlimited'], /--request-rate: .*cannot be part of a list/],
    [['--max-in-flight', '5/min'], /--max-in-flight: .*with no unit of time/],
    [['--max-in-flight', '1.5'], /--max-in-flight: .*whole number/],
    [['--request-rate', '10/min', '--produce-bytes-rate', '1e400'], /--produce-bytes-rate: .*too large/],
  ];
  for (const [flags, why] of cases) {
    const r = await quota('set', '--user', 'carol', ...flags);
    t.equal(r.code, 2, `${flags.join(' ')}: a usage error`);
    t.match(r.stderr, why, flags.join(' '));
  }
  t.same(await listJson('--user', 'carol'), [], 'nothing applied, not even the good flag beside a bad one');
});
