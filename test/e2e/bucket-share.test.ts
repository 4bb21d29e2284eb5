// quotas.max_buckets_per_principal: one user spread over many client-ids cannot take max_buckets whole.
import t from 'tap';
import { serverWithClient } from '../helpers/server.js';

t.test("past its share a user's further client-ids share one overflow bucket: limited, and room left for others", async (t) => {
  const { s, c } = await serverWithClient(t, {
    // A bucket per (user, client-id) pair: the quota is set at <default> user and <default> client-id.
    quotas: { max_buckets: 100, max_buckets_per_principal: 10, defaults: { request_rate: 'unlimited' } },
  });
  await c.alterQuotas([
    {
      entity: [
        ['user', null],
        ['client-id', null],
      ],
      quota_key: 'request_rate',
      quota_value: 5,
    },
  ]);
  for (let i = 0; i < 10; i++) {
    const r = await c.recordRequest({ user: 'hog', clientId: `app-${i}`, count: 5 });
    t.equal(r.throttleTimeMs, 0, `client-id ${i}: its own bucket`);
  }
  t.equal(s.app.manager.buckets.size, 10);
  // The eleventh client-id and every one after it share one bucket: the first fills it, the next is throttled.
  t.equal((await c.recordRequest({ user: 'hog', clientId: 'app-10', count: 5 })).throttleTimeMs, 0);
  const over = await c.recordRequest({ user: 'hog', clientId: 'app-11', count: 5 });
  t.ok(over.throttleTimeMs > 0, 'a new client-id past the share is limited, not untracked');
  t.equal(
    over.entity,
    'user:hog/client-id:\u0000',
    'the overflow bucket: client-id NUL (a client naming itself so shares it, which only limits it more)',
  );
  for (let i = 12; i < 200; i++) await c.recordRequest({ user: 'hog', clientId: `app-${i}`, count: 1 });
  t.equal(s.app.manager.buckets.size, 11, 'the user holds its share plus one overflow bucket');
  t.equal(s.app.manager.untracked, 0, 'nothing went untracked');
  t.equal((await c.recordRequest({ user: 'other', clientId: 'x', count: 5 })).throttleTimeMs, 0, 'another user gets its own bucket');
  t.equal(s.app.manager.buckets.size, 12);
  t.match(await s.app.metrics.metrics(), /^rivven_quota_bucket_overflow_total 190$/m);
});
