import t from 'tap';
import { QuotaTable } from '../../src/quota/quota-table.js';
import { serverWithClient } from '../helpers/server.js';

type Alter = Parameters<Awaited<ReturnType<typeof serverWithClient>>['c']['alterQuotas']>[0][number];
const tierValue = (tier: string, v: number | null): Alter => ({ entity: [['tier', tier]], quota_key: 'request_rate', quota_value: v });
const assign = (user: string, tier: string | null): Alter => ({ entity: [['user', user]], quota_key: 'tier', quota_value: tier });

t.test('deleting tiers never scans the configured entities: the in-use check reads an index', async (t) => {
  const { s, c } = await serverWithClient(t);
  await c.alterQuotas([
    tierValue('gold', 10),
    tierValue('silver', 5),
    ...Array.from({ length: 20 }, (_, i) => tierValue(`unused-${i}`, 1)),
  ]);
  await c.alterQuotas([
    assign('alice', 'gold'),
    assign('bob', 'gold'),
    assign('carol', 'silver'),
    { entity: [['user', 'dave']], quota_key: 'request_rate', quota_value: 3 },
  ]);
  // Any scan of every configured entity would now throw.
  const table = s.app.table;
  const entries = table.entries.bind(table);
  table.entries = () => {
    throw new Error('scanned every entity');
  };
  t.teardown(() => {
    table.entries = entries;
  });
  t.equal(await c.alterQuotas(Array.from({ length: 20 }, (_, i) => tierValue(`unused-${i}`, null))), 20, 'unused tiers deleted');
  t.match(await c.alterQuotas([tierValue('gold', null)]).catch((e: unknown) => e), {
    code: 'TIER_IN_USE',
    message: /assigned to 2 entities \(user:alice, user:bob\)/,
  });
  t.match(
    await c.alterQuotas([tierValue('gold', null), assign('alice', null)]).catch((e: unknown) => e),
    {
      code: 'TIER_IN_USE',
      message: /assigned to 1 entities \(user:bob\)/,
    },
    'an unassignment in the same request is counted',
  );
  t.equal(await c.alterQuotas([tierValue('gold', null), assign('alice', null), assign('bob', 'silver')]), 3, 'reassigned: deleted');
});

t.test('the tier index follows every change: reassignment, removal, an entity emptied', async (t) => {
  const table = new QuotaTable({}, 'rivven', { gold: { request_rate: 10 }, silver: { request_rate: 5 } });
  const alice = { kind: 'user', user: 'alice' } as const;
  const app = { kind: 'user+client-id', user: 'alice', client: 'app' } as const;
  table.setValue(alice, 'tier', 'gold');
  table.setValue(app, 'tier', 'gold');
  table.setValue(app, 'request_rate', 7);
  t.same([...table.tierMembers('gold').values()], [alice, app]);
  table.setValue(alice, 'tier', 'silver');
  t.same([...table.tierMembers('gold').values()], [app]);
  t.same([...table.tierMembers('silver').values()], [alice]);
  table.setValue(alice, 'tier', undefined); // alice now has nothing configured: dropped
  t.equal(table.tierMembers('silver').size, 0);
  table.setValue(app, 'tier', undefined);
  t.equal(table.tierMembers('gold').size, 0, 'the entity keeps its rate, the tier loses it');
  t.equal(table.get(app, 2), 7);
});
