import t from 'tap';
import { FailureDelay } from '../../src/auth/failure-delay.js';

t.test('FailureDelay.queue: no wait without a pending refusal, then one slot per token', async (t) => {
  const d = new FailureDelay(100);
  t.equal(d.queue('a', 0), 0, 'no refusal pending: checked now');
  t.equal(d.delayFor('a', 0), 100);
  t.equal(d.queue('a', 10), 190, 'behind the pending refusal');
  t.equal(d.queue('b', 10), 0, 'another address is not held');
  t.equal(d.queue('a', 500), 0, 'once the queue is past, checked now again');
});
