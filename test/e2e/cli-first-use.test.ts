import t from 'tap';
import { quotaCliAgainstServer } from '../helpers/quota-cli.js';
import { QuotaClient } from '../../src/client/quota-client.js';

// What a new user tripped on in the quota commands (issue 24). A file of its own: test/cli-quota.test.ts is near
// tap's per-file timeout on a loaded machine.
const { quota, server } = quotaCliAgainstServer();

t.test('usage errors a new user made: exit 2, and what to type instead', async (t) => {
  const cases: [string[], RegExp][] = [
    [['set', '--user', 'a', '--produce-rate', '1'], /unknown option '--produce-rate'\n\(Did you mean --produce-bytes-rate\?\)/],
    [
      ['violations', '--type', 'THROTTLED'],
      /--type: unknown type "THROTTLED" \(a throttle is RATE_LIMIT_EXCEEDED\); use RATE_LIMIT_EXCEEDED, CONCURRENT_LIMIT_EXCEEDED, BLOCKED, SHADOW_VIOLATION, AUTHENTICATION_FAILED\n/,
    ],
  ];
  for (const [args, reason] of cases) {
    const r = await quota(...args);
    t.equal(r.code, 2, `${args.join(' ')}: exit 2`);
    t.match(r.stderr, reason, `${args.join(' ')}: says why`);
  }
});

t.test('violations --type takes any case and commas, and the server accepts what the CLI lets through', async (t) => {
  const client = await QuotaClient.connect({ port: server().port });
  await client.alterQuotas([{ entity: [['user', 'throttled']], quota_key: 'request_rate', quota_value: 1 }]);
  for (let i = 0; i < 3; i++) await client.recordRequest({ user: 'throttled' });
  await client.close();
  const r = await quota('violations', '--type', 'rate_limit_exceeded,blocked', '--json');
  t.equal(r.code, 0, r.stderr);
  const types = new Set((JSON.parse(r.stdout) as { events: { type: string }[] }).events.map((e) => e.type));
  t.ok(types.has('RATE_LIMIT_EXCEEDED'), 'the throttle above is listed');
  t.ok(
    [...types].every((type) => type === 'RATE_LIMIT_EXCEEDED' || type === 'BLOCKED'),
    [...types].join(','),
  );
});

t.test('max_in_flight reads as a count in set, list and usage; usage --user shows the leases held', async (t) => {
  const set = await quota('set', '--user', 'svc', '--max-in-flight', '20');
  t.equal(set.stdout, 'set 1 quota(s) for user:svc: max_in_flight=20\n', 'a count, not 20B');
  const list = await quota('list', '--user', 'svc');
  t.equal(list.stdout, 'ENTITY    PRODUCE  CONSUME  REQUESTS  IN-FLIGHT\nuser:svc  -        -        -         20\n');
  await quota('set', '--user', 'plain', '--request-rate', '5');
  t.notMatch((await quota('list', '--user', 'plain')).stdout, /IN-FLIGHT/, 'the column only when some entry has one');
  const client = await QuotaClient.connect({ port: server().port });
  t.teardown(() => client.close());
  t.match(await client.acquireLease({ user: 'svc' }), { granted: true });
  const usage = await quota('usage', '--user', 'svc');
  t.match(usage.stdout, /\nuser:svc +max_in_flight +1 held +20 +5% /, 'the lease row, filtered like the buckets');
  t.notMatch((await quota('usage', '--user', 'nobody-else')).stdout, /max_in_flight/, 'and not under another principal');
  t.match((await quota('usage')).stdout, /\nuser:svc +max_in_flight/, 'nor lost without a filter');
});

t.test('a limit reads the same in list and usage: one formatter', async (t) => {
  const client = await QuotaClient.connect({ port: server().port });
  t.teardown(() => client.close());
  await client.recordProduce({ user: 'fmt', bytes: 3 * 2 ** 20 });
  t.match((await quota('list', '--default')).stdout, /default +50MiB\/s /);
  const usage = await quota('usage', '--user', 'fmt');
  t.match(
    usage.stdout,
    /\nuser:fmt +produce_bytes_rate +[\d.]+MiB\/s +50MiB\/s /,
    'the limit as quota list shows it, the rate in its units',
  );
  const top = await quota('top', '--once', '--user', 'fmt');
  t.match(top.stdout, / 50MiB\/s /);
});
