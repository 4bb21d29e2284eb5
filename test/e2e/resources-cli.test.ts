// The CLI's named resources: `--rate <resource>=<value>` and `--burst` on quota set and tier set (repeatable),
// shown by quota list, tier list and --json; a bad or undeclared resource is a clear error.
import t from 'tap';
import { run } from '../helpers/cli.js';
import { startServer, type TestServer } from '../helpers/server.js';

let server: TestServer | undefined;
let env: Record<string, string> = {};
t.before(async () => {
  server = await startServer({ quotas: { resources: ['orders', 'services'] } });
  env = { RIVVEN_SERVER: `127.0.0.1:${server.port}` };
});
t.teardown(() => server?.stop());
const cli = (...args: string[]) => run(args, { env });

t.test('quota set --rate and --burst, repeatable; list shows them in the operator unit, --json canonical', async (t) => {
  const set = await cli('quota', 'set', '--user', 'alice', '--rate', 'orders=10/min', '--rate', 'services=5/h', '--burst', 'orders=10');
  t.equal(set.code, 0, set.stderr);
  t.match(set.stdout, /set 3 quota\(s\) for user:alice: orders_rate=10\/min, services_rate=5\/h, orders_burst=10/);
  const list = await cli('quota', 'list', '--user', 'alice');
  t.match(list.stdout, /RESOURCES/);
  t.match(list.stdout, /orders=10\/min services=5\/h/);
  t.match(list.stdout, /burst orders=10/);
  const json = JSON.parse((await cli('quota', 'list', '--user', 'alice', '--json')).stdout) as { quotas: Record<string, unknown> }[];
  t.same(json[0]!.quotas, { orders_rate: '10/min', services_rate: '5/h', orders_burst: 10 });
  const del = await cli('quota', 'delete', '--user', 'alice', '--quota', 'services_rate');
  t.equal(del.code, 0, del.stderr);
  t.match(del.stdout, /removed 1 quota/);
});

t.test('tier set --rate; tier list shows it', async (t) => {
  const set = await cli('tier', 'set', 'pro', '--rate', 'orders=60/min', '--max-in-flight', '25');
  t.equal(set.code, 0, set.stderr);
  const list = await cli('tier', 'list');
  t.match(list.stdout, /tier:pro .*25 +orders=60\/min/);
});

t.test('bad --rate: no =, a bad name, twice, a bad value, an undeclared resource', async (t) => {
  const cases: [string[], RegExp][] = [
    [['--rate', 'orders'], /--rate takes <resource>=<value>/],
    [['--rate', 'Orders=1'], /a-z/],
    [['--rate', 'orders=1', '--rate', 'orders=2'], /orders was given twice/],
    [['--rate', 'orders=10/fortnight'], /--rate orders: .*fortnight/],
    [['--burst', 'orders=10/min'], /--burst orders: /],
  ];
  for (const [flags, message] of cases) {
    const r = await cli('quota', 'set', '--user', 'bob', ...flags);
    t.not(r.code, 0, flags.join(' '));
    t.match(r.stderr, message, flags.join(' '));
  }
  const undeclared = await cli('quota', 'set', '--user', 'bob', '--rate', 'events=1');
  t.not(undeclared.code, 0);
  t.match(undeclared.stderr, /events_rate.*no such resource in quotas.resources \(declared: orders, services\)/);
});
