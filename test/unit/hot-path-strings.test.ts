import { readFileSync } from 'node:fs';
import t from 'tap';

// ioredis subclasses String (RESP3 verbatim strings), and every server loads it. From then on V8 no longer
// inlines `s.charCodeAt(i)` looked up on a primitive string: the name hashes below, run on every Record request,
// cost 5x. They call String.prototype.charCodeAt through a reference held once instead (bench/wire.ts measures
// the difference; no test here measures time).
const HASHING = ['src/quota/keyed-ids.ts', 'src/util/count-min.ts'];

t.test('the per-request name hashes call charCodeAt through a held reference, never as a method of the string', async (t) => {
  for (const file of HASHING) {
    const source = readFileSync(new URL(`../../${file}`, import.meta.url), 'utf8');
    const code = source.replace(/\/\*[\s\S]*?\*\/|\/\/.*$/gm, '');
    t.notMatch(code, /\w\.charCodeAt\(/, `${file}: no s.charCodeAt(i)`);
    t.match(code, /const charCodeAt = String\.prototype\.charCodeAt;/, `${file}: the reference held once`);
    t.match(code, /charCodeAt\.call\(/, `${file}: called through it`);
  }
});
