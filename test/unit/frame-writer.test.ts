import t from 'tap';
import { FrameWriter } from '../../src/protocol/frame-writer.js';
import { OK_BODY } from '../../src/protocol/responses.js';
import { rawFrame } from '../helpers/wire.js';

const okFrame = (id: number): Buffer => rawFrame(OK_BODY.length + 4, id, OK_BODY);

t.test('Ok from the template: the length, the correlation id (all 32 bits) and the body, byte for byte', async (t) => {
  const out = new FrameWriter();
  for (const id of [0, 1, 0x7fffffff, 0x80000000, 0xffffffff]) {
    out.ok(id);
    t.same(out.take(), okFrame(id), `id ${id}`);
  }
  t.equal(out.take(), null, 'nothing written, nothing taken');
});

t.test('a taken batch keeps its bytes whatever is written after it, across new slabs', async (t) => {
  const out = new FrameWriter();
  const taken: [Buffer, Buffer][] = [];
  // Enough batches of growing size to outgrow the first slab several times, one frame bigger than a slab among them.
  for (let batch = 0; batch < 200; batch++) {
    const expected: Buffer[] = [];
    for (let i = 0; i < batch % 40; i++) {
      out.ok(batch * 1000 + i);
      expected.push(okFrame(batch * 1000 + i));
    }
    if (batch === 100) {
      const big = rawFrame(40_004, batch, Buffer.alloc(40_000, 7));
      out.frame(big);
      expected.push(big);
    }
    const got = out.take();
    if (expected.length === 0) t.equal(got, null);
    else taken.push([got!, Buffer.concat(expected)]);
  }
  // Checked after every write is done: a batch that shared bytes with a later one would show the later one's.
  t.ok(
    taken.every(([got, want]) => got.equals(want)),
    `${taken.length} batches kept their bytes`,
  );
});

t.test('reset forgets only what was not taken; length counts since the last take', async (t) => {
  const out = new FrameWriter();
  out.ok(1);
  const first = out.take()!;
  out.ok(2);
  t.equal(out.length, okFrame(2).length);
  out.reset();
  t.equal(out.length, 0);
  t.equal(out.take(), null, 'the reset frame is gone');
  out.ok(3);
  t.same(out.take(), okFrame(3));
  t.same(first, okFrame(1), 'the batch taken before the reset is intact');
});

t.test('room and advance: an in-place writer writes from `end`, after frames not yet taken', async (t) => {
  const out = new FrameWriter();
  out.ok(1);
  const b = out.room(5);
  const at = out.end;
  b.set([1, 2, 3, 4, 5], at);
  out.advance(at + 5);
  t.same(out.take(), Buffer.concat([okFrame(1), Buffer.from([1, 2, 3, 4, 5])]));
  // After a take the next in-place write starts after the taken bytes, which stay as they were.
  const taken = Buffer.from(b.subarray(0, at + 5));
  const b2 = out.room(3);
  b2.set([9, 9, 9], out.end);
  out.advance(out.end + 3);
  t.same(out.take(), Buffer.from([9, 9, 9]));
  t.same(b.subarray(0, at + 5), taken, 'the first batch was not written over');
});
