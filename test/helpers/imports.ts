// Reads the imports of src/ and checks them against the allowed directions written in README (Layout). Pure
// functions over { file: source } maps, so test/layers.test.ts can plant a violation in memory and see it caught.
// TypeScript 7's compiler offers no JavaScript API (no ts.preProcessFile), so the imports are read by a strict
// regex: every `import`/`export ... from '...'` statement, bare `import '...'`, and `import('...')`.
import { readdirSync, readFileSync } from 'node:fs';
import { posix } from 'node:path';

/** A statement's module specifier; the statement starts a line, so `from '...'` inside a comment or string is not read. */
const IMPORT =
  /^[ \t]*(?:import|export)\b[^;'"`]*?\bfrom\s*['"]([^'"\n]+)['"]|^[ \t]*import\s*['"]([^'"\n]+)['"]|\bimport\(\s*['"]([^'"\n]+)['"]\s*\)/gm;

/** Every module specifier of one source file, in order. */
export function importsOf(source: string): string[] {
  return [...source.matchAll(IMPORT)].map((m) => (m[1] ?? m[2] ?? m[3])!);
}

/** The specifiers a running program loads: `import type` and `export type` statements are erased by the compiler. */
export function runtimeImportsOf(source: string): string[] {
  return [...source.matchAll(IMPORT)].filter((m) => !/^\s*(?:import|export)\s+type\b/.test(m[0])).map((m) => (m[1] ?? m[2] ?? m[3])!);
}

/** Every .ts file under src/, as paths relative to the repository root ('src/quota/clock.ts') -> source. */
export function readSources(root: URL): Map<string, string> {
  const files = new Map<string, string>();
  const walk = (dir: string): void => {
    for (const e of readdirSync(new URL(dir, root), { withFileTypes: true })) {
      const path = `${dir}/${e.name}`;
      if (e.isDirectory()) walk(path);
      else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) files.set(path, readFileSync(new URL(path, root), 'utf8'));
    }
  };
  walk('src');
  return files;
}

/** The layer of a file: its directory under src/ ('quota'), or for a file directly in src/ its name ('app'). */
export function layerOf(file: string): string {
  const parts = file.split('/');
  return parts.length === 2 ? parts[1]!.replace(/\.ts$/, '') : parts[1]!;
}

/** A relative specifier resolved to the .ts file it names ('src/quota/clock.ts'); undefined for a package. */
export function resolveImport(from: string, spec: string): string | undefined {
  if (!spec.startsWith('.')) return undefined;
  return posix.join(posix.dirname(from), spec).replace(/\.js$/, '.ts');
}

/** layer -> the layers it may import (besides itself). */
export type Rules = Map<string, Set<string>>;

/**
 * The rules from the README's list: lines `    <layer>[, <layer>...] -> <layer>, <layer>...` (or `-> nothing`)
 * after the line that starts `Which layer may import which`.
 */
export function parseRules(readme: string): Rules {
  const start = readme.indexOf('Which layer may import which');
  if (start < 0) throw new Error('README has no "Which layer may import which" list');
  const rules: Rules = new Map();
  const lines = readme.slice(start).split('\n').slice(1);
  let seen = false;
  for (const line of lines) {
    const m = /^ {4}([a-z-]+(?:, [a-z-]+)*)\s+->\s+(.+?)\s*$/.exec(line);
    if (m === null) {
      if (seen && line.trim() !== '') break;
      continue;
    }
    seen = true;
    const targets = m[2] === 'nothing' ? [] : m[2]!.split(',').map((s) => s.trim());
    for (const layer of m[1]!.split(', ')) rules.set(layer, new Set(targets));
  }
  return rules;
}

/** Every import of `files` the rules do not allow, as 'src/a/b.ts imports ../c/d.js (a may not import c)'. */
export function violations(files: Map<string, string>, rules: Rules): string[] {
  const found: string[] = [];
  for (const [file, source] of files) {
    const from = layerOf(file);
    const allowed = rules.get(from);
    for (const spec of importsOf(source)) {
      const target = resolveImport(file, spec);
      if (target === undefined) continue;
      const to = layerOf(target);
      if (to === from) continue;
      if (allowed === undefined) found.push(`${file} imports ${spec} (layer ${from} is not in the README's list)`);
      else if (!allowed.has(to)) found.push(`${file} imports ${spec} (${from} may not import ${to})`);
    }
  }
  return found;
}

/**
 * Import cycles between files that a running program follows (type-only imports are erased), each as
 * 'a.ts -> b.ts -> a.ts', one per cycle found by a depth-first walk.
 */
export function cycles(files: Map<string, string>): string[] {
  const edges = new Map<string, string[]>();
  for (const [file, source] of files) {
    const targets: string[] = [];
    for (const spec of runtimeImportsOf(source)) {
      const t = resolveImport(file, spec);
      if (t !== undefined && files.has(t)) targets.push(t);
    }
    edges.set(file, targets);
  }
  const found: string[] = [];
  const done = new Set<string>();
  const path: string[] = [];
  const onPath = new Set<string>();
  const visit = (f: string): void => {
    if (done.has(f)) return;
    if (onPath.has(f)) {
      found.push([...path.slice(path.indexOf(f)), f].join(' -> '));
      return;
    }
    onPath.add(f);
    path.push(f);
    for (const t of edges.get(f) ?? []) visit(t);
    path.pop();
    onPath.delete(f);
    done.add(f);
  };
  for (const f of [...edges.keys()].sort()) visit(f);
  return found;
}
