import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { ViolationLog } from '../../src/observability/violation-log.js';
import { entityMatcher } from '../../src/protocol/messages/describe-violations.js';
import { ManualClock } from '../../src/quota/clock.js';
import { BatchedWriter } from '../../src/store/batched-writer.js';
import { setSliceMs } from '../../src/util/slices.js';

const tmpFile = (name: string) => join(mkdtempSync(join(tmpdir(), 'rivven-vbounds-')), name);
const lines = (file: string) =>
  readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l !== '');

t.test('the writer batches many lines per write and bounds what waits, counting what it drops', async (t) => {
  const file = tmpFile('w.log');
  const w = new BatchedWriter({ path: file, maxFileBytes: 1 << 30, maxPendingBytes: 100 * 100 });
  const line = `${'x'.repeat(99)}\n`;
  let accepted = 0;
  for (let i = 0; i < 1000; i++) accepted += Number(w.write(line));
  t.equal(accepted, 100, 'maxPendingBytes hold 100 lines of 100 bytes');
  t.equal(w.dropped, 900);
  await w.flushed();
  t.equal(lines(file).length, 100);
  t.equal(w.writes, 1, 'one write for the burst');
  t.equal(w.queuedBytes, 0);
  for (let i = 0; i < 50; i++) w.write(line);
  await w.flushed();
  t.equal(lines(file).length, 150, 'room again once written');
});

t.test('a flood of episode starts: the file gets them in few writes; a full queue drops and counts', async (t) => {
  const file = tmpFile('violations.log');
  const log = new ViolationLog(new ManualClock(0), {
    maxEvents: 100_000,
    file,
    maxFileBytes: 1 << 30,
    episodeGapMs: 10,
    maxEpisodes: 1_000_000,
    maxQueuedBytes: 64 * 1024,
  });
  for (let i = 0; i < 10_000; i++) log.violation('RATE_LIMIT_EXCEEDED', `user:u${i}`, 'request_rate', 'x');
  await log.flushed();
  const written = lines(file).length;
  t.ok(log.writesDropped > 0, 'past max_queued_bytes events are dropped');
  t.equal(written + log.writesDropped, 10_000, 'every start is written or counted');
  t.equal((await log.query({ limit: 10_000 })).summary.total, 10_000, 'the ring keeps them all');
});

t.test("one principal's open episodes are bounded by its share", async (t) => {
  const log = new ViolationLog(new ManualClock(0), { maxEvents: 100, file: null, maxFileBytes: 4096, episodeGapMs: 10, maxEpisodes: 1000 });
  for (let i = 0; i < 50; i++) log.violation('RATE_LIMIT_EXCEEDED', `user:alice/client-id:c${i}`, 'request_rate', 'x');
  t.equal(log.openEpisodes, 10, 'a tenth of max_events');
  t.equal(log.dropped, 40);
  log.violation('RATE_LIMIT_EXCEEDED', 'user:bob/client-id:c0', 'request_rate', 'x');
  t.equal(log.openEpisodes, 11, 'another principal still opens one');
});

t.test('the ring keeps the newest maxEvents in order', async (t) => {
  const clock = new ManualClock(0);
  const log = new ViolationLog(clock, {
    maxEvents: 5,
    file: null,
    maxFileBytes: 4096,
    episodeGapMs: 10,
    maxEpisodes: 1000,
    maxEpisodesPerPrincipal: 100,
  });
  for (let i = 0; i < 12; i++) log.violation('BLOCKED', `user:u${i}`, null, 'x');
  t.same(
    (await log.query({ limit: 10 })).events.map((e) => e.entity),
    ['user:u7', 'user:u8', 'user:u9', 'user:u10', 'user:u11'],
  );
});

t.test('entity filters are set lookups that match what a scan of every filter matches', async (t) => {
  const components: [string, string | null][] = [
    ['user', 'alice'],
    ['client-id', 'app'],
    ['consumer-group', null],
  ];
  const m = entityMatcher(components)!;
  const naive = (entity: string) =>
    components.some(([type, name]) => entity.split('/').some((p) => (name === null ? p.startsWith(`${type}:`) : p === `${type}:${name}`)));
  for (const e of [
    'user:alice',
    'user:alice/client-id:x',
    'user:bob/client-id:app',
    'user:alicex',
    'consumer-group:g',
    'client-id:apps',
    '10.0.0.1',
    'user:',
  ]) {
    t.equal(m(e), naive(e), e);
  }
});

t.test('DescribeViolations reads the ring in slices: other work runs while it does', async (t) => {
  const log = new ViolationLog(new ManualClock(0), {
    maxEvents: 5000,
    file: null,
    maxFileBytes: 4096,
    episodeGapMs: 10,
    maxEpisodes: 10_000,
  });
  for (let i = 0; i < 5000; i++) log.violation('BLOCKED', `user:u${i}`, null, 'x');
  setSliceMs(0);
  t.teardown(() => setSliceMs(8));
  let ranMeanwhile = false;
  setImmediate(() => {
    ranMeanwhile = true;
  });
  const r = await log.query({ limit: 10, matches: entityMatcher([['user', 'u42']]) });
  t.equal(r.summary.total, 1);
  t.ok(ranMeanwhile, 'a setImmediate callback ran before the query finished');
});

t.test('ending many episodes at once is sliced: the event loop turns between slices, and every one ends', async (t) => {
  setSliceMs(0); // yield every 256 episodes, so the interleaving below does not depend on this machine's speed
  t.teardown(() => setSliceMs(8));
  const clock = new ManualClock(0);
  const log = new ViolationLog(clock, { maxEvents: 1000, file: null, maxFileBytes: 1 << 20, episodeGapMs: 1000, maxEpisodes: 100_000 });
  for (let i = 0; i < 10_000; i++) log.violation('RATE_LIMIT_EXCEEDED', `user:u${i}`, 'request_rate', 'x');
  t.equal(log.openEpisodes, 10_000);
  clock.advance(1000);
  let turned = false;
  setImmediate(() => {
    turned = true;
  });
  const ticking = log.tick();
  t.ok(log.openEpisodes > 0, 'not all ended in one hold of the event loop');
  t.equal(log.tick(), ticking, 'a tick while one runs joins it');
  await ticking;
  t.ok(turned, 'the event loop turned meanwhile');
  t.equal(log.openEpisodes, 0, 'every quiet episode ended');
  t.equal((await log.query({ limit: 10_000 })).summary.by_type.RATE_LIMIT_EXCEEDED, 1000, 'the ring holds the last 1,000 events: ends');
  t.match((await log.query({ limit: 1 })).events[0], { detail: /^ended after/ });
});
