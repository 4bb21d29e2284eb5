import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { ViolationLog } from '../../src/observability/violation-log.js';
import { ManualClock } from '../../src/quota/clock.js';
import { serverWithClient } from '../helpers/server.js';

const tmpFile = (name: string) => join(mkdtempSync(join(tmpdir(), 'rivven-vbounds-')), name);
t.test('rivven_violation_log_dropped_total and rivven_violation_episodes_dropped_total are exported', async (t) => {
  const { s } = await serverWithClient(t);
  const text = await s.app.metrics.metrics();
  t.match(text, /^rivven_violation_log_dropped_total 0$/m);
  t.match(text, /^rivven_violation_episodes_dropped_total 0$/m);
});

t.test('violations.log replaced by a FIFO or a directory: start and flush never wait on it, failures are counted', async (t) => {
  for (const make of [(f: string) => execFileSync('mkfifo', [f]), (f: string) => mkdirSync(f)]) {
    const file = tmpFile('violations.log');
    make(file);
    const log = new ViolationLog(new ManualClock(0), { maxEvents: 10, file, maxFileBytes: 1 << 20, episodeGapMs: 10, maxEpisodes: 10 });
    await log.load(); // a FIFO without a writer: reading it would wait for one for ever
    log.violation('BLOCKED', 'user:x', null, 'y');
    await log.flushed(); // opening a FIFO without a reader for writing would wait for one for ever
    t.equal(log.writeFailures, 1, 'the write failed and was counted');
    t.equal((await log.query({ limit: 10 })).events.length, 1, 'the event stays in the ring');
  }
});
