import t from 'tap';
import { Identities, sha256 } from '../../src/auth/identities.js';
import { Guard, type Peer } from '../../src/auth/guard.js';
import { silentLogger } from '../../src/observability/logger.js';
import { ViolationLog } from '../../src/observability/violation-log.js';
import { ManualClock } from '../../src/quota/clock.js';
import { HelloAuth } from '../../src/server/hello-auth.js';

const START = 1_000_000;
const RIGHT = 'rvn_right';

/** HelloAuth with a tokens file holding RIGHT, on a manual clock that also runs its timers. */
function helloAuth(delayMs: number) {
  const clock = new ManualClock(START);
  const guard = new Guard(Identities.from([{ name: 'broker', sha256: sha256(RIGHT).toString('hex'), roles: ['record'] }]));
  const violations = new ViolationLog(clock, { maxEvents: 100, file: null, maxFileBytes: 4096, episodeGapMs: 1000, maxEpisodes: 100 });
  const auth = new HelloAuth(guard, violations, silentLogger(), delayMs, 10_000, clock);
  let id = 0;
  const peer = (remote: string): Peer => ({
    id: ++id,
    remote,
    principal: 'anonymous',
    roles: 0,
    authenticated: false,
    clientName: undefined,
    closeAfterReply: false,
  });
  /** What each Hello was answered and when (ms of the manual clock since START), in the order answered. */
  const answers: string[] = [];
  const hello = (name: string, remote: string, token: string) => {
    const answer = (what: string) => answers.push(`${name} ${what} at ${clock.now() - START}`);
    try {
      const pending = auth.authenticate(peer(remote), token);
      if (pending === undefined) answer('ok');
      else
        pending.then(
          () => answer('ok'),
          (e: { code: string }) => answer(e.code),
        );
    } catch (e) {
      answer((e as { code: string }).code);
    }
  };
  /** Moves the clock 1 ms at a time to `ms` after START, letting each step's answers settle before the next. */
  const runTo = async (ms: number) => {
    while (clock.now() - START < ms) {
      clock.advance(1);
      await new Promise((resolve) => setImmediate(resolve));
    }
  };
  return { clock, hello, answers, runTo };
}

t.test('refusals from one address are answered failure_delay_ms apart, on the clock, none before its time', async (t) => {
  const { clock, hello, answers, runTo } = helloAuth(150);
  // Four wrong tokens from one address on four connections at once, then a right one, and a wrong one from
  // another address: the address's queue holds the right token as long as the wrong ones.
  for (const n of [1, 2, 3, 4]) hello(`wrong${n}`, `10.0.0.1:${5000 + n}`, 'rvn_wrong');
  hello('right', '10.0.0.1:5005', RIGHT);
  hello('other', '10.0.0.2:5000', 'rvn_wrong');
  await runTo(0);
  t.same(answers, [], 'nothing is answered at once');
  await runTo(1000);
  t.same(answers, [
    'wrong1 AUTHENTICATION_FAILED at 150',
    'other AUTHENTICATION_FAILED at 150',
    'wrong2 AUTHENTICATION_FAILED at 300',
    'wrong3 AUTHENTICATION_FAILED at 450',
    'wrong4 AUTHENTICATION_FAILED at 600',
    'right ok at 750',
  ]);
  t.equal(clock.pending, 0, 'no timer left');
  // Once the queue has passed, a right token is checked and answered at once again.
  hello('later', '10.0.0.1:5006', RIGHT);
  t.same(answers.at(-1), 'later ok at 1000');
});

t.test('failure_delay_ms 0: a refusal is answered at once', async (t) => {
  const { hello, answers } = helloAuth(0);
  for (const n of [1, 2]) hello(`wrong${n}`, `10.0.0.1:${5000 + n}`, 'rvn_wrong');
  t.same(answers, ['wrong1 AUTHENTICATION_FAILED at 0', 'wrong2 AUTHENTICATION_FAILED at 0']);
});

t.test("ManualClock's timers run as it advances, in due order, each at its own time", async (t) => {
  const clock = new ManualClock(100);
  const ran: string[] = [];
  clock.after(30, () => ran.push(`b at ${clock.now()}`));
  clock.after(10, () => ran.push(`a at ${clock.now()}`));
  clock.after(30, () => ran.push(`c at ${clock.now()}`));
  clock.advance(9);
  t.same(ran, [], 'none before its time');
  clock.advance(100);
  t.same(ran, ['a at 110', 'b at 130', 'c at 130'], 'each at its due time, equals in the order scheduled');
  t.equal(clock.now(), 209);
  clock.after(5, () => ran.push('d'));
  clock.set(0);
  t.equal(clock.pending, 1, 'moving back runs nothing');
});
