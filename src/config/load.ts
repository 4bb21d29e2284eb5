import { existsSync, readFileSync } from 'node:fs';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { configSchema, type Config } from './schema.js';

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

export interface ConfigSources {
  /** A file named by --config; it must exist. Without one, ./rivven.yaml is used if present. */
  file?: string | undefined;
  env?: NodeJS.ProcessEnv;
  /** Values from command-line flags, as a partial config. */
  flags?: Record<string, Record<string, unknown>>;
  cwd?: string;
}

export interface LoadedConfig {
  config: Config;
  /** The file read, if any. */
  file: string | undefined;
}

type Tree = Record<string, unknown>;

/** Every leaf key of the config, as paths, e.g. ["server", "port"]. */
export const CONFIG_PATHS: string[][] = leafPaths(configSchema.parse({}) as unknown as Tree);

/** RIVVEN_SERVER_PORT -> server.port and so on, derived from the schema so they cannot drift apart. */
export const envName = (path: string[]): string => `RIVVEN_${path.join('_').toUpperCase()}`;

/**
 * Precedence: flags > RIVVEN_* environment > file > built-in defaults. Every problem from every source is
 * collected and reported in one ConfigError; the result is deeply frozen.
 */
export function loadConfig(sources: ConfigSources = {}): LoadedConfig {
  const problems: string[] = [];
  const cwd = sources.cwd ?? process.cwd();
  let file = sources.file;
  if (file === undefined && existsSync(`${cwd}/rivven.yaml`)) file = `${cwd}/rivven.yaml`;
  let fromFile: Tree = {};
  if (file !== undefined) {
    try {
      const parsed: unknown = parseYaml(readFileSync(file, 'utf8'));
      if (parsed === null || parsed === undefined) fromFile = {};
      else if (typeof parsed === 'object' && !Array.isArray(parsed)) fromFile = parsed as Tree;
      else problems.push(`${file}: the top level must be a mapping`);
    } catch (err) {
      if (err instanceof YAMLParseError) problems.push(`${file}: ${err.message.split('\n')[0]}`);
      else problems.push(`${file}: cannot read: ${(err as Error).message}`);
    }
  }
  const fromEnv: Tree = {};
  const env = sources.env ?? process.env;
  for (const path of CONFIG_PATHS) {
    const raw = env[envName(path)];
    if (raw === undefined) continue;
    // Parsed as a YAML scalar so "9190" is a number and "unlimited" a string, exactly as in the file.
    let value: unknown = raw;
    try {
      if (raw.trim() !== '') value = parseYaml(raw);
    } catch {
      value = raw;
    }
    setPath(fromEnv, path, value);
  }
  const merged = merge(merge(fromFile, fromEnv), (sources.flags ?? {}) as Tree);
  const result = configSchema.safeParse(merged);
  if (!result.success) {
    for (const issue of result.error.issues) {
      const at = issue.path.map(String).join('.');
      if (issue.code === 'unrecognized_keys') {
        for (const key of issue.keys) problems.push(`${at ? `${at}.` : ''}${key}: unknown key`);
      } else {
        problems.push(`${at || '(top level)'}: ${issue.message}`);
      }
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return { config: deepFreeze(result.data!), file };
}

function leafPaths(tree: Tree, prefix: string[] = []): string[][] {
  return Object.entries(tree).flatMap(([k, v]) =>
    v !== null && typeof v === 'object' && !Array.isArray(v) ? leafPaths(v as Tree, [...prefix, k]) : [[...prefix, k]],
  );
}

function setPath(tree: Tree, path: string[], value: unknown): void {
  let node = tree;
  for (const key of path.slice(0, -1)) node = (node[key] ??= {}) as Tree;
  node[path[path.length - 1]!] = value;
}

function merge(base: Tree, over: Tree): Tree {
  const out: Tree = { ...base };
  for (const [k, v] of Object.entries(over)) {
    if (v === undefined) continue;
    const b = out[k];
    out[k] = isTree(b) && isTree(v) ? merge(b, v) : v;
  }
  return out;
}

const isTree = (v: unknown): v is Tree => v !== null && typeof v === 'object' && !Array.isArray(v);

function deepFreeze<T>(value: T): T {
  if (isTree(value)) for (const v of Object.values(value)) deepFreeze(v);
  return Object.freeze(value);
}
