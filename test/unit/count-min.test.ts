import t from 'tap';
import { CountMinSketch } from '../../src/util/count-min.js';

t.test('a count-min sketch never counts a key below its true count, and forgets what is taken back', async (t) => {
  const s = new CountMinSketch(64);
  const truth = new Map<string, number>();
  for (let i = 0; i < 5000; i++) {
    const k = `u:${i % 300}`;
    s.add(k, 1);
    truth.set(k, (truth.get(k) ?? 0) + 1);
  }
  let under = 0;
  for (const [k, n] of truth) if (s.estimate(k) < n) under++;
  t.equal(under, 0, 'no estimate below the truth, with 300 keys in 64 cells a row');
  for (const [k, n] of truth) for (let i = 0; i < n; i++) s.add(k, -1);
  t.equal(s.estimate('u:7'), 0, 'all taken back: 0');
  const exact = new CountMinSketch(65_536);
  for (let i = 0; i < 10; i++) exact.add('u:hog', 1);
  exact.add('u:other', 1);
  t.equal(exact.estimate('u:hog'), 10, 'few keys in a wide sketch: exact');
  t.equal(exact.estimate('u:nobody'), 0);
});
