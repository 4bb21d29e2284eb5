// The quota CLI's errors, help, seed examples and hostile output (split from cli-quota.test.ts: each file
// runs its CLI processes one after another, so two files run in parallel).
import t from 'tap';
import { quotaCliAgainstServer } from './helpers/quota-cli.js';
import { run } from './helpers/cli.js';

const { quota, listJson, server } = quotaCliAgainstServer();
t.test('usage errors exit 2 with the reason', async (t) => {
  const cases: [string[], RegExp][] = [
    [['set', '--user', 'a'], /give at least one of/],
    [['set', '--request-rate', '5'], /name an entity/],
    [['set', '--user', 'a', '--request-rate', 'fast'], /--request-rate: "fast" is not a rate/],
    [['set', '--user', 'a', '--request-rate', '0'], /greater than 0/],
    [['set', '--user', 'a', '--max-in-flight', '1.5'], /--max-in-flight: .*whole number/],
    [['set', '--user', 'a', '--user-default', '--request-rate', '1'], /cannot both be given/],
    [['set', '--default', '--user', 'a', '--request-rate', '1'], /global default alone/],
    [['set', '--consumer-group', 'g', '--user', 'a', '--consume-bytes-rate', '1'], /cannot be combined/],
    [['delete', '--user', 'a'], /required option '--quota/],
    [['delete', '--user', 'a', '--quota', 'speed'], /unknown key speed/],
    [['list', '--bogus'], /unknown option '--bogus'/],
    [['list', '--server', 'nowhere'], /not host:port/],
    [['frobnicate'], /unknown command/],
    [['set', '--user', 'alice', '--user', 'bob', '--request-rate', '1'], /--user was given twice \("alice", then "bob"\)/],
    [['set', '--user', 'a', '--request-rate', '1', '--request-rate', '2'], /--request-rate was given twice/],
    [['set', '--user', 'a', '--produce-bytes-rate', '9007199254740992'], /is too large; the largest rate is 9007199254740991/],
    [['set', '--user', 'a', '--produce-bytes-rate', '100000TB'], /is too large/],
    [['delete', '--user', 'a', '--quota', 'request_rate,'], /--quota: an empty key \(a stray comma\?\)/],
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
  t.equal(
    r.stderr,
    'rivven: cannot reach the rivven server at 127.0.0.1:1 (ECONNREFUSED); is `rivven serve` running there? (set --server or RIVVEN_SERVER)\n',
  );
  t.equal(r.stdout, '');
});

t.test('--help on every command shows an example', async (t) => {
  for (const args of [
    ['--help'],
    ['serve', '--help'],
    ['quota', '--help'],
    ['quota', 'list', '--help'],
    ['quota', 'set', '--help'],
    ['quota', 'delete', '--help'],
  ]) {
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

t.test('delete: repeated --quota accumulates; removing what is not set says so, exits 0', async (t) => {
  await quota('set', '--user', 'multi', '--produce-bytes-rate', '5', '--request-rate', '5');
  const r = await quota('delete', '--user', 'multi', '--quota', 'produce_bytes_rate', '--quota', 'request_rate');
  t.equal(r.code, 0);
  t.match(r.stdout, /^removed 2 quota\(s\) from user:multi/);
  t.same(await listJson('--user', 'multi'), []);
  const none = await quota('delete', '--user', 'nosuchuser', '--quota', 'produce_bytes_rate');
  t.equal(none.code, 0);
  t.equal(none.stdout, 'nothing to remove: user:nosuchuser has no produce_bytes_rate set\n');
});

t.test('hostile names print safely in list, usage, top and errors: no control character reaches the terminal', async (t) => {
  const hostile = ['\u001b[2J\u001b[Hcleared', 'two\nlines  999B/s', '<default>', 'a/client-id:b', 'bidi\u202eevil'];
  for (const name of hostile) {
    t.equal((await quota('set', '--user', name, '--request-rate', '5')).code, 0, `set ${JSON.stringify(name)}`);
    server().app.manager.recordRequest(name, null, 10, false);
  }
  const outputs = {
    list: (await quota('list')).stdout,
    usage: (await quota('usage')).stdout,
    top: (await quota('top', '--once')).stdout,
  };
  for (const [cmd, out] of Object.entries(outputs)) {
    t.notMatch(out, /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e]/, `${cmd}: no control characters`);
    t.notOk(
      out.split('\n').some((l) => l.startsWith('lines')),
      `${cmd}: a newline in a name cannot start a row`,
    );
  }
  t.match(outputs.list, /user:"<default>"/, 'a user named <default> is quoted: it is not the <default> user');
  t.match(outputs.list, /user:"a\/client-id:b"/, 'a name that reads like a compound entity is quoted');
  t.match(outputs.list, /user:"\\u001b\[2J\\u001b\[Hcleared"/, 'escapes are shown, not run');
  t.match(outputs.usage, /user:"two\\nlines {2}999B\/s"/);
  const err = await quota('set', '--user', 'x', '--consumer-group', '\u001b[31mred', '--consume-bytes-rate', '5');
  t.notMatch(err.stderr, /\u001b/, 'errors escape too');
  for (const name of hostile) await quota('delete', '--user', name, '--quota', 'request_rate');
});

t.test('usage truncates long names to the terminal width with an ellipsis; --json has them whole', async (t) => {
  const long = `long-${'n'.repeat(1000)}`;
  server().app.manager.recordRequest(long, null, 1, false);
  const table = await quota('usage', '--user', long);
  const widest = Math.max(...table.stdout.split('\n').map((l) => l.length));
  t.ok(widest <= 120, `rows fit 120 columns off a terminal (widest ${widest})`);
  t.match(table.stdout, /long-n+…/);
  const json = JSON.parse((await quota('usage', '--user', long, '--json')).stdout) as { entity: string; user: string }[];
  t.equal(json[0]!.user, long, 'the whole name in --json');
});
