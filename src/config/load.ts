import { existsSync, readFileSync } from 'node:fs';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { isLoopback } from '../auth/security-files.js';
import { resourceNameError } from '../quota/quota-key.js';
import { nearMisses } from '../util/did-you-mean.js';
import { configSchema, type Config } from './schema.js';

export class ConfigError extends Error {
  constructor(
    readonly problems: string[],
    heading = 'invalid configuration',
  ) {
    super(
      problems.length === 1 && heading !== 'invalid configuration'
        ? `${heading}: ${problems[0]}`
        : `${heading}:\n${problems.map((p) => `  - ${p}`).join('\n')}`,
    );
    this.name = 'ConfigError';
  }
}

/** RIVVEN_* variables the CLI's client commands read; they are not server configuration. */
const CLIENT_VARIABLES = new Set(['RIVVEN_SERVER', 'RIVVEN_TOKEN', 'RIVVEN_TLS_CA', 'RIVVEN_TLS_CERT', 'RIVVEN_TLS_KEY']);

export interface ConfigSources {
  /** A file named by --config; it must exist. Without one, ./rivven.yaml is used if present. */
  file?: string | undefined;
  env?: NodeJS.ProcessEnv;
  /** Values from command-line flags, as a partial config. */
  flags?: Record<string, Record<string, unknown>>;
  /** The flag each of those values came from ("server.port" -> "--port"), so an error names what was typed. */
  flagNames?: Record<string, string>;
  cwd?: string;
}

export interface LoadedConfig {
  config: Config;
  /** The file read, if any. */
  file: string | undefined;
  /** Things worth a warning that do not stop the start, e.g. a misspelt RIVVEN_* variable. */
  warnings: string[];
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
  if (file !== undefined && !existsSync(file)) {
    throw new ConfigError(
      [`${file} does not exist (the repository ships rivven.yaml.example: copy it, or run without --config for the embedded defaults)`],
      'no configuration file',
    );
  }
  if (file !== undefined) {
    let text = '';
    try {
      text = readFileSync(file, 'utf8');
      const parsed: unknown = parseYaml(text);
      if (parsed === null || parsed === undefined) fromFile = {};
      else if (typeof parsed === 'object' && !Array.isArray(parsed)) fromFile = parsed as Tree;
      else problems.push(`${file}: the top level must be a mapping`);
    } catch (err) {
      if (err instanceof YAMLParseError) problems.push(yamlProblem(file, text, err));
      else problems.push(`${file}: cannot read: ${(err as Error).message}`);
    }
  }
  const fromEnv: Tree = {};
  const env = sources.env ?? process.env;
  /** "server.port" -> "RIVVEN_SERVER_PORT" for the values that came from the environment. */
  const fromVariable = new Map<string, string>();
  // Each declared resource's defaults have variables too (RIVVEN_QUOTAS_DEFAULTS_ORDERS_RATE).
  const resourcePaths = declaredResources(fromFile, env).flatMap((n) => [
    ['quotas', 'defaults', `${n}_rate`],
    ['quotas', 'defaults', `${n}_burst`],
  ]);
  const paths = [...CONFIG_PATHS, ...resourcePaths];
  const known = new Set(paths.map(envName));
  const warnings = Object.keys(env)
    .filter((k) => k.startsWith('RIVVEN_') && !known.has(k) && !CLIENT_VARIABLES.has(k))
    .map((k) => `${k} is not a rivven setting and is ignored (settings are RIVVEN_<SECTION>_<KEY>, e.g. RIVVEN_SERVER_PORT)`);
  for (const path of paths) {
    const raw = env[envName(path)];
    if (raw === undefined) continue;
    if (envName(path) === RESOURCES_VARIABLE) {
      if (getPath(sources.flags as Tree | undefined, path) === undefined) fromVariable.set(path.join('.'), envName(path));
      setPath(fromEnv, path, resourceList(raw));
      continue;
    }
    if (getPath(sources.flags as Tree | undefined, path) === undefined) fromVariable.set(path.join('.'), envName(path));
    // Parsed as a YAML scalar so "9190" is a number and "unlimited" a string, exactly as in the file.
    let value: unknown = raw;
    try {
      if (raw.trim() !== '') value = parseYaml(raw);
      // Only a flow collection ([a, b] or {k: v}) is a list or map: "rivven:" is a key prefix, not a map.
      if (value !== null && typeof value === 'object' && !/^\s*[[{]/.test(raw)) value = raw;
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
        for (const key of issue.keys) problems.push(`${at ? `${at}.` : ''}${key}: unknown key${suggest(key, siblingKeys(at))}`);
      } else {
        const flag = getPath(sources.flags as Tree | undefined, issue.path.map(String)) !== undefined ? sources.flagNames?.[at] : undefined;
        const source = flag ?? fromVariable.get(at);
        problems.push(`${source !== undefined ? `${source} (${at})` : at || '(top level)'}: ${issue.message}`);
      }
    }
  }
  if (result.success) {
    const c = result.data;
    if (c.auth.tokens_file === null && !c.auth.allow_anonymous && !isLoopback(c.server.host)) {
      problems.push(
        `server.host is ${c.server.host}, which other machines can reach, and auth.tokens_file is not set: anyone who reaches the port could change every quota. ` +
          'Set auth.tokens_file (rivven token create makes one), or auth.allow_anonymous: true (RIVVEN_AUTH_ALLOW_ANONYMOUS=true) on a private network, or listen on 127.0.0.1',
      );
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return { config: deepFreeze(result.data!), file, warnings };
}

/** "Nested mappings ... at line 2, column 9:" and an excerpt -> "file:2:9: Nested mappings ... (here: <the line>)". */
function yamlProblem(file: string, text: string, err: YAMLParseError): string {
  const reason = err.message
    .split('\n')[0]!
    .replace(/ at line \d+, column \d+:?$/, '')
    .replace(/:$/, '');
  const pos = err.linePos?.[0];
  if (pos === undefined) return `${file}: ${reason}`;
  const line = text.split(/\r?\n/)[pos.line - 1];
  return `${file}:${pos.line}:${pos.col}: ${reason}${line !== undefined && line.trim() !== '' ? ` (here: ${JSON.stringify(line)})` : ''}`;
}

const suggest = (key: string, known: string[]): string => {
  const near = nearMisses(key, known);
  return near.length === 0 ? '' : ` (did you mean ${near.join(' or ')}?)`;
};

/** The keys the schema knows beside an unknown one at `at` ("" for the top level). */
function siblingKeys(at: string): string[] {
  const prefix = at === '' ? [] : at.split('.');
  const keys = new Set<string>();
  for (const path of CONFIG_PATHS) {
    if (path.length > prefix.length && prefix.every((k, i) => path[i] === k)) keys.add(path[prefix.length]!);
  }
  return [...keys];
}

function leafPaths(tree: Tree, prefix: string[] = []): string[][] {
  return Object.entries(tree).flatMap(([k, v]) =>
    v !== null && typeof v === 'object' && !Array.isArray(v) ? leafPaths(v as Tree, [...prefix, k]) : [[...prefix, k]],
  );
}

const RESOURCES_VARIABLE = 'RIVVEN_QUOTAS_RESOURCES';

/** RIVVEN_QUOTAS_RESOURCES: a YAML flow list (`[orders, services]`) or, as an operator would write it, `orders,services`. */
function resourceList(raw: string): unknown {
  if (/^\s*\[/.test(raw)) {
    try {
      return parseYaml(raw);
    } catch {
      return raw;
    }
  }
  return raw
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

/** quotas.resources as the variable or the file declares it (the schema checks it; only valid names are used here). */
function declaredResources(fromFile: Tree, env: Record<string, string | undefined>): string[] {
  const raw = env[RESOURCES_VARIABLE];
  const list = raw !== undefined ? resourceList(raw) : getPath(fromFile, ['quotas', 'resources']);
  return Array.isArray(list) ? list.filter((n): n is string => typeof n === 'string' && resourceNameError(n) === undefined) : [];
}

function getPath(tree: Tree | undefined, path: string[]): unknown {
  let node: unknown = tree;
  for (const key of path) node = isTree(node) ? node[key] : undefined;
  return node;
}

function setPath(tree: Tree, path: string[], value: unknown): void {
  let node = tree;
  for (const key of path.slice(0, -1)) {
    node[key] ??= {};
    node = node[key] as Tree;
  }
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
