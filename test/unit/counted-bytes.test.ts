// The HTTP middleware's byte counting, apart from HTTP: the carried throttle and its bound, payload counting.
import { Readable } from 'node:stream';
import t from 'tap';
import { type Counted, contentLength, countPayload, ThrottledAfter } from '../../src/http/counted-bytes.js';
import { ManualClock } from '../../src/quota/clock.js';

t.test('a carried throttle ends on time and keeps at most max tenants, forgetting the oldest', async (t) => {
  const clock = new ManualClock(1000);
  const after = new ThrottledAfter(clock, 2);
  after.throttle('a', 500);
  t.equal(after.remaining('a'), 500);
  after.throttle('a', 100);
  t.equal(after.remaining('a'), 500, 'a shorter throttle does not cut a longer one');
  after.throttle('b', 500);
  after.throttle('c', 500);
  t.equal(after.remaining('a'), 0, 'the oldest tenant forgotten past the bound');
  t.equal(after.remaining('c'), 500);
  clock.advance(500);
  t.equal(after.remaining('b'), 0, 'over once its time has passed');
});

t.test('payload sizes: strings in bytes, buffers, streams as they pass', async (t) => {
  const counted: Counted = { tenant: 't', clientId: null, requestBytes: 0, responseBytes: 0 };
  countPayload(counted, 'é');
  t.equal(counted.responseBytes, 2, 'UTF-8 bytes, not characters');
  countPayload(counted, Buffer.alloc(10));
  t.equal(counted.responseBytes, 12);
  const stream = countPayload(counted, Readable.from([Buffer.alloc(3), Buffer.alloc(4)])) as Readable;
  for await (const _ of stream);
  t.equal(counted.responseBytes, 19);
  t.equal(countPayload(counted, null), null);
});

t.test('Content-Length: a plain decimal count only', async (t) => {
  t.equal(contentLength('1234'), 1234);
  t.equal(contentLength(undefined), undefined);
  t.equal(contentLength('-1'), undefined);
  t.equal(contentLength('1e3'), undefined);
  t.equal(contentLength('9'.repeat(16)), Number.MAX_SAFE_INTEGER, 'past 2^53-1: counted as the most there can be');
  t.equal(contentLength('00000000000005000'), 5000, 'zero-padded (legal, and Node reads it): not a way around counting');
});
