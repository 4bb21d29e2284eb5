import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join, normalize } from 'node:path';
import t from 'tap';

// What `npm install rivven-quota` gets: the files `npm pack` would put in the package (dist/ is built by
// `npm test` before the tests run).
const ROOT = new URL('../../', import.meta.url).pathname;
const packed = (): Set<string> => {
  const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: ROOT, encoding: 'utf8' });
  return new Set((JSON.parse(out) as [{ files: { path: string }[] }])[0].files.map((f) => f.path));
};

t.test('the package holds what the README links to and what every source map points at', async (t) => {
  const files = packed();
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const links = [...readme.matchAll(/\]\(([^)#\s]+)(?:#[^)]*)?\)/g)].map((m) => m[1]!).filter((l) => !/^[a-z]+:/.test(l));
  t.ok(links.includes('docs/operations.md'), 'the README links into docs/');
  for (const link of links) {
    const path = normalize(link).replace(/\/$/, '');
    t.ok(files.has(path) || [...files].some((f) => f.startsWith(`${path}/`)), `README link ${link} is in the package`);
  }
  const maps = [...files].filter((f) => f.endsWith('.map'));
  t.ok(maps.length > 0, 'source maps are shipped');
  const missing = maps.flatMap((m) =>
    (JSON.parse(readFileSync(join(ROOT, m), 'utf8')) as { sources: string[] }).sources
      .map((s) => normalize(join(dirname(m), s)))
      .filter((s) => !files.has(s)),
  );
  t.same(missing, [], 'every source a map names is shipped');
});

t.test('npm start runs the built CLI without rebuilding it', async (t) => {
  const scripts = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;
  t.equal(scripts.start, 'node bin/rivven serve');
  t.match(scripts.prepare, /npm run build/, 'npm install builds once');
});
