import t from 'tap';
import { internAscii } from '../../src/protocol/name-cache.js';

const intern = (s: string | Buffer): string | undefined => {
  // Inside a larger buffer, as in a frame: bytes around the name must not count.
  const name = typeof s === 'string' ? Buffer.from(s, 'latin1') : s;
  const buf = Buffer.concat([Buffer.from([0xff, 0x41]), name, Buffer.from([0xfe])]);
  return internAscii(buf, 2, 2 + name.length);
};

t.test('the same bytes give the same string object; different bytes, their own string', async (t) => {
  const names = Array.from({ length: 5000 }, (_, i) => `user-${i}-${'x'.repeat(i % 13)}`);
  t.ok(
    names.every((n) => intern(n) === n),
    'every name reads back as itself (5000 names in a 4096-entry cache: collisions replace, never confuse)',
  );
  t.equal(intern('alice'), intern('alice'));
  t.equal(intern('a'), 'a');
  t.equal(intern(''), '');
  t.equal(intern('alicf'), 'alicf', 'one bit apart');
  t.equal(intern('bench-1'), 'bench-1');
  t.equal(intern('bench-10'), 'bench-10', 'a prefix of another name');
});

t.test('a byte with the high bit set anywhere (in a whole word or in the tail) means not ASCII', async (t) => {
  for (let len = 1; len <= 13; len++) {
    for (let at = 0; at < len; at++) {
      const bytes = Buffer.alloc(len, 0x61);
      bytes[at] = 0x80 | (at * 7);
      if (intern(bytes) !== undefined) t.fail(`length ${len}, high bit at ${at}`);
    }
    if (intern(Buffer.alloc(len, 0x7f)) !== '\x7f'.repeat(len)) t.fail(`length ${len}: 0x7f is ASCII`);
  }
  t.pass('every position checked');
});

t.test('names longer than the arena cell, and a short name replacing a long one in the same entry', async (t) => {
  for (const len of [47, 48, 49, 100, 1024]) {
    const a = 'a'.repeat(len - 1);
    t.equal(intern(`${a}x`), `${a}x`, `${len} bytes`);
    t.equal(intern(`${a}y`), `${a}y`, `${len} bytes, the last byte differs`);
    t.equal(intern(`y${a}`), `y${a}`, `${len} bytes, the first byte differs`);
  }
  // Many names through few entries: every replacement (long by short, short by long) must read back right.
  const names = Array.from({ length: 20_000 }, (_, i) => (i % 3 === 0 ? `long-${'z'.repeat(60)}-${i}` : `s${i}`));
  t.ok(names.every((n) => intern(n) === n) && names.every((n) => intern(n) === n), '20000 names of both kinds, twice over');
});
