import t from 'tap';
import type { RivvenError } from '../../src/protocol/error-codes.js';
import { FrameDecoder } from '../../src/protocol/frame-decoder.js';
import { rawFrame } from '../helpers/wire.js';

type Frame = [number, string];

function decodeAll(chunks: Buffer[], max = 1024): Frame[] {
  const out: Frame[] = [];
  const d = new FrameDecoder(max, (id, buf, start, end) => out.push([id, buf.toString('hex', start, end)]));
  for (const c of chunks) d.push(c);
  // A frame left half-parsed shows up as a mismatch against the fixture.
  if (d.midFrame) out.push([-1, 'left half-parsed']);
  return out;
}

const frameOf = (id: number, body: Buffer): Buffer => rawFrame(body.length + 4, id, body);

// Fixtures: each a byte stream and the frames it holds.
const fixtures: { name: string; bytes: Buffer; frames: Frame[] }[] = [
  { name: 'empty body', bytes: frameOf(7, Buffer.alloc(0)), frames: [[7, '']] },
  { name: 'one small frame', bytes: frameOf(1, Buffer.from('81a474797065a450696e67', 'hex')), frames: [[1, '81a474797065a450696e67']] },
  {
    name: 'three frames back to back',
    bytes: Buffer.concat([frameOf(1, Buffer.from([1])), frameOf(0xffffffff, Buffer.from([2, 3])), frameOf(3, Buffer.alloc(0))]),
    frames: [
      [1, '01'],
      [0xffffffff, '0203'],
      [3, ''],
    ],
  },
  { name: 'body at the size limit', bytes: frameOf(9, Buffer.alloc(1020, 0xab)), frames: [[9, 'ab'.repeat(1020)]] },
];

for (const f of fixtures) {
  t.test(f.name, async (t) => {
    t.same(decodeAll([f.bytes]), f.frames, 'fed whole');
    t.same(decodeAll([...f.bytes].map((b) => Buffer.from([b]))), f.frames, 'fed byte by byte');
    for (let cut = 1; cut < f.bytes.length; cut++) {
      const got = decodeAll([f.bytes.subarray(0, cut), f.bytes.subarray(cut)]);
      if (JSON.stringify(got) !== JSON.stringify(f.frames)) t.fail(`split at ${cut}`);
    }
    for (let a = 1; a < Math.min(f.bytes.length, 40); a++) {
      for (let b = a + 1; b < Math.min(f.bytes.length, 40); b++) {
        const got = decodeAll([f.bytes.subarray(0, a), f.bytes.subarray(a, b), f.bytes.subarray(b)]);
        if (JSON.stringify(got) !== JSON.stringify(f.frames)) t.fail(`split at ${a} and ${b}`);
      }
    }
    t.pass('every split decodes the same frames');
  });
}

function errorOf(chunks: Buffer[], max = 1024): { code: string | undefined; frames: number } {
  let frames = 0;
  const d = new FrameDecoder(max, () => frames++);
  try {
    for (const c of chunks) d.push(c);
  } catch (err) {
    return { code: (err as RivvenError).code, frames };
  }
  return { code: undefined, frames };
}

t.test('a length above the limit fails before the body is buffered', async (t) => {
  const header = rawFrame(1025, 5);
  t.same(errorOf([header]), { code: 'FRAME_TOO_LARGE', frames: 0 }, 'whole header');
  t.same(errorOf([header.subarray(0, 4)]), { code: 'FRAME_TOO_LARGE', frames: 0 }, 'only the 4 length bytes');
  t.same(errorOf([...header.subarray(0, 4)].map((b) => Buffer.from([b]))), { code: 'FRAME_TOO_LARGE', frames: 0 }, 'byte by byte');
  t.same(errorOf([rawFrame(0xffffffff, 1)]), { code: 'FRAME_TOO_LARGE', frames: 0 }, '4 GiB claim');
  t.same(errorOf([rawFrame(1024, 1, Buffer.alloc(1020))]), { code: undefined, frames: 1 }, 'exactly the limit passes');
});

t.test('lengths below 4 are invalid frames', async (t) => {
  for (const length of [0, 1, 2, 3]) {
    t.same(errorOf([rawFrame(length, 0)]), { code: 'INVALID_FRAME', frames: 0 }, `length ${length}`);
  }
  t.same(
    errorOf([frameOf(1, Buffer.from([1])), rawFrame(3, 0)]),
    { code: 'INVALID_FRAME', frames: 1 },
    'frames before the bad one are delivered',
  );
});

t.test('after an error the decoder delivers nothing more', async (t) => {
  let frames = 0;
  const d = new FrameDecoder(1024, () => frames++);
  t.throws(() => d.push(rawFrame(2, 0)));
  d.push(frameOf(1, Buffer.from([1])));
  t.equal(frames, 0);
});

t.test('a throwing handler kills the decoder and the error comes out of push, never on a later tick', async (t) => {
  const seen: number[] = [];
  const d = new FrameDecoder(1024, (id) => {
    seen.push(id);
    if (id === 1) throw new Error('handler bug');
  });
  t.throws(() => d.push(Buffer.concat([frameOf(1, Buffer.from([1])), frameOf(2, Buffer.from([2]))])), /handler bug/);
  d.push(frameOf(3, Buffer.from([3])));
  t.same(seen, [1], 'nothing after the failure is delivered: the owner closes the connection');
});

t.test('pause() stops after the current frame and resume() continues with the rest of the chunk', async (t) => {
  const seen: number[] = [];
  const d = new FrameDecoder(1024, (id) => {
    seen.push(id);
    if (id === 2) d.pause();
  });
  d.push(Buffer.concat([1, 2, 3, 4].map((i) => frameOf(i, Buffer.from([i])))));
  t.same(seen, [1, 2], 'stopped right after frame 2');
  t.ok(d.bufferedBytes > 0, 'the rest is kept');
  d.push(frameOf(5, Buffer.from([5])));
  t.same(seen, [1, 2], 'a chunk pushed while paused waits too');
  d.resume();
  t.same(seen, [1, 2, 3, 4, 5], 'then everything, in order');
  t.equal(d.bufferedBytes, 0);
});

t.test('a partial frame costs the bytes that arrived, not the length it announces', async (t) => {
  const d = new FrameDecoder(1024 * 1024, () => undefined);
  d.push(rawFrame(1024 * 1024, 1, Buffer.alloc(10)));
  t.ok(d.midFrame);
  t.equal(d.bufferedBytes, 10, 'ten body bytes held for a 1 MiB frame');
  t.equal(d.partials, 1, 'counted as one partial frame');
});
