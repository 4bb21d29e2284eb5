import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { ManualClock } from '../../src/quota/clock.js';
import { ViolationLog } from '../../src/observability/violation-log.js';
t.test('the ring is bounded; the file rotates by size', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'rivven-violations-'));
  const file = join(dir, 'violations.log');
  const clock = new ManualClock(0);
  const log = new ViolationLog(clock, { maxEvents: 5, file, maxFileBytes: 4096, episodeGapMs: 10, maxEpisodes: 3 });
  for (let i = 0; i < 40; i++) log.violation('RATE_LIMIT_EXCEEDED', `user:u${i}`, 'request_rate', 'x');
  t.equal(log.dropped, 37, 'past maxEpisodes open, violations are counted, not opened');
  for (let round = 0; round < 30; round++) {
    clock.advance(20);
    log.tick();
    for (let i = 0; i < 3; i++) log.violation('BLOCKED', `user:b${round}-${i}`, null, 'y'.repeat(50));
  }
  await log.flushed();
  t.equal((await log.query({ limit: 100 })).events.length, 5, 'the ring holds maxEvents');
  t.ok(statSync(file).size <= 4096, 'the file stays under max_file_bytes');
  t.ok(statSync(`${file}.1`).size > 0, 'the previous one was rotated to violations.log.1');
});
