import t from 'tap';
import { run } from './helpers/cli.js';
import { startServer, type TestServer } from './helpers/server.js';

let server: TestServer;
let env: Record<string, string>;
t.before(async () => {
  server = await startServer();
  env = { RIVVEN_SERVER: `127.0.0.1:${server.port}` };
});
t.teardown(() => server.stop());

const quota = (...args: string[]) => run(['quota', ...args], { env });
const listJson = async (...entity: string[]) => JSON.parse((await quota('list', ...entity, '--json')).stdout) as unknown[];

const forms: { flags: string[]; entity: unknown[] }[] = [
  { flags: ['--user', 'alice'], entity: [['user', 'alice']] },
  { flags: ['--user-default'], entity: [['user', null]] },
  { flags: ['--client-id', 'app-1'], entity: [['client-id', 'app-1']] },
  { flags: ['--client-id-default'], entity: [['client-id', null]] },
  { flags: ['--user', 'alice', '--client-id', 'app-1'], entity: [['user', 'alice'], ['client-id', 'app-1']] },
  { flags: ['--user', 'alice', '--client-id-default'], entity: [['user', 'alice'], ['client-id', null]] },
  { flags: ['--user-default', '--client-id', 'app-1'], entity: [['user', null], ['client-id', 'app-1']] },
  { flags: ['--user-default', '--client-id-default'], entity: [['user', null], ['client-id', null]] },
];

t.test('set, list and delete for every user/client-id entity form', async (t) => {
  for (const { flags, entity } of forms) {
    const set = await quota('set', ...flags, '--produce-bytes-rate', '10MB', '--request-rate', '5k');
    t.equal(set.code, 0, `set ${flags.join(' ')}: ${set.stderr}`);
    t.same(await listJson(...flags), [{ entity, quotas: { produce_bytes_rate: 10_000_000, request_rate: 5000 } }], `listed ${flags.join(' ')}`);
    const del = await quota('delete', ...flags, '--quota', 'produce_bytes_rate,request_rate');
    t.equal(del.code, 0, del.stderr);
    t.same(await listJson(...flags), [], `deleted ${flags.join(' ')}`);
  }
});

t.test('consumer groups and the global default', async (t) => {
  t.equal((await quota('set', '--consumer-group', 'etl', '--consume-bytes-rate', '10MiB')).code, 0);
  t.equal((await quota('set', '--consumer-group-default', '--consume-bytes-rate', '1GB')).code, 0);
  t.same(await listJson('--consumer-group', 'etl'), [{ entity: [['consumer-group', 'etl']], quotas: { consume_bytes_rate: 10 * 2 ** 20 } }]);
  t.same(await listJson('--consumer-group-default'), [{ entity: [['consumer-group', null]], quotas: { consume_bytes_rate: 1e9 } }]);
  t.equal((await quota('set', '--default', '--request-rate', 'unlimited')).code, 0);
  t.same(await listJson('--default'), [{ entity: [['default', null]], quotas: { produce_bytes_rate: 52428800, consume_bytes_rate: 104857600, request_rate: 'unlimited' } }]);
  t.equal((await quota('delete', '--default', '--quota', 'request_rate')).code, 0);
  t.same(await listJson('--default'), [{ entity: [['default', null]], quotas: { produce_bytes_rate: 52428800, consume_bytes_rate: 104857600, request_rate: 1000 } }], 'back to the yaml default');
  await quota('delete', '--consumer-group', 'etl', '--quota', 'consume_bytes_rate');
  await quota('delete', '--consumer-group-default', '--quota', 'consume_bytes_rate');
});

t.test('units, unlimited and the readable table', async (t) => {
  await quota('set', '--user', 'units', '--produce-bytes-rate', '10MiB', '--consume-bytes-rate', 'unlimited', '--request-rate', '1500');
  t.same(await listJson('--user', 'units'), [{ entity: [['user', 'units']], quotas: { produce_bytes_rate: 10485760, consume_bytes_rate: 'unlimited', request_rate: 1500 } }]);
  const table = await quota('list', '--user', 'units');
  t.equal(table.code, 0);
  t.equal(table.stdout, 'ENTITY      PRODUCE  CONSUME    REQUESTS\nuser:units  10MiB/s  unlimited  1500/s\n');
  const all = await quota('list');
  t.match(all.stdout, /^ENTITY +PRODUCE +CONSUME +REQUESTS\ndefault +50MiB\/s +100MiB\/s +1000\/s\n/);
});

t.test('--dry-run validates and changes nothing', async (t) => {
  const r = await quota('set', '--user', 'dry', '--request-rate', '7', '--dry-run');
  t.equal(r.code, 0);
  t.match(r.stdout, /dry run/);
  t.same(await listJson('--user', 'dry'), []);
  const bad = await quota('set', '--consumer-group', 'g', '--request-rate', '7', '--dry-run');
  t.equal(bad.code, 1, 'the server still validates');
});

t.test('usage errors exit 2 with the reason', async (t) => {
  const cases: [string[], RegExp][] = [
    [['set', '--user', 'a'], /give at least one of/],
    [['set', '--request-rate', '5'], /name an entity/],
    [['set', '--user', 'a', '--request-rate', 'fast'], /--request-rate: "fast" is not a rate/],
    [['set', '--user', 'a', '--request-rate', '0'], /greater than 0/],
    [['set', '--user', 'a', '--request-rate', '1.5'], /whole number/],
    [['set', '--user', 'a', '--user-default', '--request-rate', '1'], /cannot both be given/],
    [['set', '--default', '--user', 'a', '--request-rate', '1'], /global default alone/],
    [['set', '--consumer-group', 'g', '--user', 'a', '--consume-bytes-rate', '1'], /cannot be combined/],
    [['delete', '--user', 'a'], /required option '--quota/],
    [['delete', '--user', 'a', '--quota', 'speed'], /unknown key speed/],
    [['list', '--bogus'], /unknown option '--bogus'/],
    [['list', '--server', 'nowhere'], /not host:port/],
    [['frobnicate'], /unknown command/],
  ];
  for (const [args, reason] of cases) {
    const r = await quota(...args);
    t.equal(r.code, 2, `${args.join(' ')}: exit 2`);
    t.match(r.stderr, reason, `${args.join(' ')}: says why`);
  }
});

t.test('a refused alteration exits 1 with the server error code', async (t) => {
  const r = await quota('set', '--consumer-group', 'g', '--produce-bytes-rate', '5');
  t.equal(r.code, 1);
  t.match(r.stderr, /^rivven: INVALID_QUOTA_KEY: .*\(alteration 0\)\n$/);
  const long = await quota('set', '--user', 'x'.repeat(1025), '--request-rate', '5');
  t.equal(long.code, 1);
  t.match(long.stderr, /INVALID_ENTITY/);
});

t.test('an unreachable server gets one clear line naming the address', async (t) => {
  const r = await run(['quota', 'list', '--server', '127.0.0.1:1']);
  t.equal(r.code, 1);
  t.equal(r.stderr, 'rivven: cannot reach the rivven server at 127.0.0.1:1 (ECONNREFUSED); is `rivven serve` running there? (set --server or RIVVEN_SERVER)\n');
  t.equal(r.stdout, '');
});

t.test('--help on every command shows an example', async (t) => {
  for (const args of [['--help'], ['serve', '--help'], ['quota', '--help'], ['quota', 'list', '--help'], ['quota', 'set', '--help'], ['quota', 'delete', '--help']]) {
    const r = await run(args);
    t.equal(r.code, 0, `${args.join(' ')} exits 0`);
    t.match(r.stdout, /Example/, `${args.join(' ')} shows an example`);
  }
});

t.test("the seed's examples work as written", async (t) => {
  const steps = [
    ['set', '--user', 'alice', '--produce-bytes-rate', '10000000', '--consume-bytes-rate', '20000000'],
    ['set', '--client-id', 'batch-processor', '--request-rate', '100'],
    ['list'],
    ['delete', '--user', 'alice', '--quota', 'produce_bytes_rate'],
  ];
  for (const step of steps) t.equal((await quota(...step)).code, 0, step.join(' '));
  t.same(await listJson('--user', 'alice'), [{ entity: [['user', 'alice']], quotas: { consume_bytes_rate: 20000000 } }]);
  t.same(await listJson('--client-id', 'batch-processor'), [{ entity: [['client-id', 'batch-processor']], quotas: { request_rate: 100 } }]);
});
