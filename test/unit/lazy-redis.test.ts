// A sidecar without Redis never loads ioredis: once a process has loaded it (its RESP decoder subclasses String),
// `s.charCodeAt(i)` costs about 5x on every string, and the Record path hashes two names per request. Follows
// the static imports from the CLI's entry (what bin/rivven loads); `import()` is how the Redis store is reached.
import { readFileSync } from 'node:fs';
import { posix } from 'node:path';
import t from 'tap';

const ROOT = new URL('../../', import.meta.url);
const STATIC = /^[ \t]*(?:import|export)\b(?!\s+type\b)[^;'"`]*?\bfrom\s*['"]([^'"\n]+)['"]|^[ \t]*import\s*['"]([^'"\n]+)['"]/gm;

/** Every package a file statically loads, following relative imports from `entry` (a path under the root). */
function staticPackages(entry: string): Map<string, string> {
  const seen = new Set<string>();
  const packages = new Map<string, string>();
  const visit = (file: string): void => {
    if (seen.has(file)) return;
    seen.add(file);
    for (const m of readFileSync(new URL(file, ROOT), 'utf8').matchAll(STATIC)) {
      const spec = (m[1] ?? m[2])!;
      if (!spec.startsWith('.')) {
        if (!packages.has(spec)) packages.set(spec, file);
        continue;
      }
      visit(posix.normalize(posix.join(posix.dirname(file), spec)).replace(/\.js$/, '.ts'));
    }
  };
  visit(entry);
  return packages;
}

t.test('the CLI, `rivven serve` and the App load ioredis only through import()', async (t) => {
  for (const [entry, known] of [
    ['src/cli/main.ts', 'commander'],
    ['src/cli/serve-run.ts', 'prom-client'],
    ['src/app.ts', 'prom-client'],
  ] as const) {
    const packages = staticPackages(entry);
    t.ok(packages.has(known), `${entry}: the walk reaches ${known}`);
    t.equal(packages.get('ioredis'), undefined, `${entry} does not load ioredis statically`);
  }
});

t.test('the walk sees ioredis where it is loaded statically', async (t) => {
  t.equal(staticPackages('src/store/redis-quota-store.ts').get('ioredis'), 'src/store/redis-backend.ts');
});
