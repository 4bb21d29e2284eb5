import t from 'tap';
import { FailureDelay } from '../../src/auth/failure-delay.js';

t.test('FailureDelay: per address, one delay apart, and a bounded memory of addresses', async (t) => {
  const d = new FailureDelay(100, 3);
  t.equal(d.delayFor('a', 0), 100);
  t.equal(d.delayFor('a', 0), 200, 'the second failure waits behind the first');
  t.equal(d.delayFor('b', 0), 100, 'another address has its own queue');
  t.equal(d.delayFor('a', 500), 100, 'once the queue has passed, one delay again');
  for (let i = 0; i < 100; i++) d.delayFor(`x${i}`, 600);
  t.ok(d.size <= 3, `at most 3 addresses remembered (${d.size})`);
  t.equal(new FailureDelay(0).delayFor('a', 0), 0, '0 turns it off');
  const q = new FailureDelay(100, 10, 250);
  t.equal(q.queue('a', 0), 0, 'no refusal pending: a token is checked at once');
  q.delayFor('a', 0);
  t.equal(q.queue('a', 0), 200, 'with one pending, the next token waits for its slot');
  t.equal(q.queue('a', 0), 300);
  t.equal(q.queue('a', 0), Number.POSITIVE_INFINITY, 'past the horizon: refused unchecked');
  t.equal(q.queue('a', 0), Number.POSITIVE_INFINITY, 'and the queue did not grow');
  t.equal(q.queue('a', 301), 0, 'once it has passed, tokens are checked at once again');
});
