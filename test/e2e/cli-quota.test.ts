import t from 'tap';
import { quotaCliAgainstServer } from '../helpers/quota-cli.js';

const { quota, spawned, listJson } = quotaCliAgainstServer();

const forms: { flags: string[]; entity: unknown[] }[] = [
  { flags: ['--user', 'alice'], entity: [['user', 'alice']] },
  { flags: ['--user-default'], entity: [['user', null]] },
  { flags: ['--client-id', 'app-1'], entity: [['client-id', 'app-1']] },
  { flags: ['--client-id-default'], entity: [['client-id', null]] },
  {
    flags: ['--user', 'alice', '--client-id', 'app-1'],
    entity: [
      ['user', 'alice'],
      ['client-id', 'app-1'],
    ],
  },
  {
    flags: ['--user', 'alice', '--client-id-default'],
    entity: [
      ['user', 'alice'],
      ['client-id', null],
    ],
  },
  {
    flags: ['--user-default', '--client-id', 'app-1'],
    entity: [
      ['user', null],
      ['client-id', 'app-1'],
    ],
  },
  {
    flags: ['--user-default', '--client-id-default'],
    entity: [
      ['user', null],
      ['client-id', null],
    ],
  },
];

t.test('set, list and delete for every user/client-id entity form', async (t) => {
  for (const { flags, entity } of forms) {
    const set = await quota('set', ...flags, '--produce-bytes-rate', '10MB', '--request-rate', '5k');
    t.equal(set.code, 0, `set ${flags.join(' ')}: ${set.stderr}`);
    t.same(
      await listJson(...flags),
      [{ entity, quotas: { produce_bytes_rate: 10_000_000, request_rate: 5000 } }],
      `listed ${flags.join(' ')}`,
    );
    const del = await quota('delete', ...flags, '--quota', 'produce_bytes_rate,request_rate');
    t.equal(del.code, 0, del.stderr);
    t.same(await listJson(...flags), [], `deleted ${flags.join(' ')}`);
  }
});

t.test('consumer groups and the global default', async (t) => {
  t.equal((await quota('set', '--consumer-group', 'etl', '--consume-bytes-rate', '10MiB')).code, 0);
  t.equal((await quota('set', '--consumer-group-default', '--consume-bytes-rate', '1GB')).code, 0);
  t.same(await listJson('--consumer-group', 'etl'), [
    { entity: [['consumer-group', 'etl']], quotas: { consume_bytes_rate: 10 * 2 ** 20 } },
  ]);
  t.same(await listJson('--consumer-group-default'), [{ entity: [['consumer-group', null]], quotas: { consume_bytes_rate: 1e9 } }]);
  t.equal((await quota('set', '--default', '--request-rate', 'unlimited')).code, 0);
  t.same(await listJson('--default'), [
    { entity: [['default', null]], quotas: { produce_bytes_rate: 52428800, consume_bytes_rate: 104857600, request_rate: 'unlimited' } },
  ]);
  t.equal((await quota('delete', '--default', '--quota', 'request_rate')).code, 0);
  t.same(
    await listJson('--default'),
    [{ entity: [['default', null]], quotas: { produce_bytes_rate: 52428800, consume_bytes_rate: 104857600, request_rate: 1000 } }],
    'back to the yaml default',
  );
  await quota('delete', '--consumer-group', 'etl', '--quota', 'consume_bytes_rate');
  await quota('delete', '--consumer-group-default', '--quota', 'consume_bytes_rate');
});

t.test('units, unlimited and the readable table', async (t) => {
  await quota('set', '--user', 'units', '--produce-bytes-rate', '10MiB', '--consume-bytes-rate', 'unlimited', '--request-rate', '1500');
  t.same(await listJson('--user', 'units'), [
    { entity: [['user', 'units']], quotas: { produce_bytes_rate: 10485760, consume_bytes_rate: 'unlimited', request_rate: 1500 } },
  ]);
  // The real bin/rivven, once: what the in-process runs parse is what a shell's command line gets.
  const table = await spawned('list', '--user', 'units');
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
