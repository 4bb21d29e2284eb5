import t from 'tap';
t.test('a Throttled reply whose wait is not 1..2^53-1 is UNEXPECTED_REPLY (a negative one would read as DENIED)', async (t) => {
  const { decodeReply } = await import('../../src/protocol/messages/record/index.js');
  const base = { type: 'Throttled', quota_type: 'request_rate', entity: 'user:a', recorded: true };
  for (const bad of [-1, 0, -5000, 2 ** 64, 1.5]) {
    t.throws(() => decodeReply({ ...base, throttle_time_ms: bad }), { code: 'UNEXPECTED_REPLY' }, `throttle_time_ms ${bad}`);
  }
  t.equal(decodeReply({ ...base, throttle_time_ms: 2 ** 32 - 1 }).throttleTimeMs, 2 ** 32 - 1);
});
