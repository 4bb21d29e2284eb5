import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { parse } from 'yaml';
import { CONFIG_PATHS, ConfigError, envName, loadConfig } from '../../src/config/load.js';
import { configSchema } from '../../src/config/schema.js';

const dir = mkdtempSync(join(tmpdir(), 'rivven-config-'));
const file = (name: string, text: string): string => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};
const problemsOf = (fn: () => unknown): string[] => {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
};

t.test('an unknown key, a wrong type and a negative number are reported together, with their paths', async (t) => {
  const path = file('bad.yaml', 'server:\n  port: "nine"\n  colour: blue\nquotas:\n  max_throttle_ms: -5\n');
  let message = '';
  try {
    loadConfig({ file: path, env: {} });
  } catch (err) {
    t.type(err, ConfigError);
    message = (err as Error).message;
  }
  t.match(message, /server\.colour: unknown key/);
  t.match(message, /server\.port: .*expected number/);
  t.match(message, /quotas\.max_throttle_ms: .*>0/);
  t.equal(message.split('\n').length, 4, 'one message: a heading and exactly three problems');
});

t.test('no file: the embedded defaults', async (t) => {
  const { config, file: used } = loadConfig({ env: {}, cwd: dir });
  t.equal(used, undefined);
  t.same(config.server, {
    host: '127.0.0.1',
    port: 9190,
    max_frame_bytes: 1048576,
    max_connections: 10000,
    max_connection_bytes: 1048576,
    max_reply_bytes: 16777216,
    frame_timeout_ms: 30000,
    auth_timeout_ms: 10000,
    max_unauthenticated_connections: 1000,
    max_partial_frame_bytes: 268435456,
    tls: { cert: null, key: null, ca: null, client_auth: 'none' },
  });
  t.same(config.auth, { tokens_file: null, allow_anonymous: false, failure_delay_ms: 100 }, 'no tokens file: open, on loopback only');
  t.same(config.quotas.defaults, { produce_bytes_rate: 52428800, consume_bytes_rate: 104857600, request_rate: 1000 });
  t.ok(Object.isFrozen(config) && Object.isFrozen(config.quotas.defaults), 'frozen all the way down');
});

t.test('precedence: flags > RIVVEN_* environment > file > defaults', async (t) => {
  const path = file(
    'p.yaml',
    'auth:\n  allow_anonymous: true\nserver:\n  port: 1111\n  host: 10.0.0.1\nquotas:\n  defaults:\n    request_rate: 5\n',
  );
  const env = { RIVVEN_SERVER_PORT: '2222', RIVVEN_QUOTAS_DEFAULTS_REQUEST_RATE: 'unlimited', RIVVEN_LOG_LEVEL: 'debug' };
  const { config } = loadConfig({ file: path, env, flags: { server: { port: 3333 } } });
  t.equal(config.server.port, 3333, 'flag wins');
  t.equal(config.server.host, '10.0.0.1', 'file beats default');
  t.equal(config.quotas.defaults.request_rate, 'unlimited', 'env beats file');
  t.equal(config.log.level, 'debug');
  t.equal(config.quotas.window_ms, 1000, 'default where nothing is set');
});

t.test('./rivven.yaml is used when present and no file is named', async (t) => {
  const cwd = mkdtempSync(join(tmpdir(), 'rivven-cwd-'));
  writeFileSync(join(cwd, 'rivven.yaml'), 'server:\n  port: 4444\n');
  const { config, file: used } = loadConfig({ env: {}, cwd });
  t.equal(config.server.port, 4444);
  t.equal(used, join(cwd, 'rivven.yaml'));
});

t.test('other problems are reported with their source', async (t) => {
  const missing = (() => {
    try {
      loadConfig({ file: join(dir, 'missing.yaml'), env: {} });
    } catch (err) {
      return (err as Error).message;
    }
    return '';
  })();
  t.match(
    missing,
    /^no configuration file: .*missing\.yaml does not exist \(.*rivven\.yaml\.example/,
    'a missing file is said to be missing',
  );
  t.match(
    problemsOf(() => loadConfig({ file: file('syntax.yaml', 'server: [1,\n'), env: {} })),
    [/syntax\.yaml:2:1: Flow sequence in block collection must be sufficiently indented and end with a \]$/],
  );
  t.match(
    problemsOf(() => loadConfig({ file: file('list.yaml', '- 1\n'), env: {} })),
    [/top level must be a mapping/],
  );
  t.match(
    problemsOf(() => loadConfig({ env: { RIVVEN_SERVER_PORT: 'abc' }, cwd: dir })),
    [/^RIVVEN_SERVER_PORT \(server\.port\): /],
    'a bad variable is named',
  );
  t.match(
    problemsOf(() => loadConfig({ env: { RIVVEN_SERVER_PORT: 'abc' }, flags: { server: { port: 'x' } }, cwd: dir })),
    [/^server\.port: /],
    'unless a flag set the value',
  );
  t.match(
    problemsOf(() => loadConfig({ env: { RIVVEN_QUOTAS_WINDOW_MS: '1000', RIVVEN_QUOTAS_WINDOW_BUCKETS: '3' }, cwd: dir })),
    [/window_ms must be a multiple of window_buckets/],
  );
  t.match(
    problemsOf(() => loadConfig({ env: { RIVVEN_QUOTAS_DEFAULTS_PRODUCE_BYTES_RATE: 'lots' }, cwd: dir })),
    [/produce_bytes_rate\): "lots" is not a rate; use a number, <amount>\/<unit>/],
  );
});

t.test('a misspelt RIVVEN_* variable is a warning; the client variables are not', async (t) => {
  const { warnings } = loadConfig({
    env: { RIVVEN_SERVER_PROT: '1', RIVVEN_SERVER: 'h:1', RIVVEN_TOKEN: 't', RIVVEN_LOG_LEVEL: 'info' },
    cwd: dir,
  });
  t.match(warnings, [/^RIVVEN_SERVER_PROT is not a rivven setting/]);
  t.equal(warnings.length, 1);
});

t.test('rivven.yaml.example documents every key with its default, and nothing else', async (t) => {
  const example = parse(readFileSync(new URL('../../rivven.yaml.example', import.meta.url), 'utf8')) as unknown;
  t.same(configSchema.parse(example), configSchema.parse({}), 'the example holds exactly the defaults');
  t.same(configSchema.parse(example), example, 'and every key of the schema appears in it');
  t.ok(CONFIG_PATHS.length >= 18);
  t.equal(envName(['quotas', 'defaults', 'request_rate']), 'RIVVEN_QUOTAS_DEFAULTS_REQUEST_RATE');
});

t.test('storage.redis and fleet: Cluster and Sentinel targets, prefixes, and fleet needing the Redis store', async (t) => {
  const cwd = '/nonexistent';
  const env = {
    RIVVEN_STORAGE_BACKEND: 'redis',
    RIVVEN_STORAGE_REDIS_KEY_PREFIX: 'team-a:',
    RIVVEN_STORAGE_REDIS_CLUSTER: '[10.0.0.1:7000, "[::1]:7001"]',
    RIVVEN_FLEET_ENABLED: 'true',
  };
  const { config } = loadConfig({ env, cwd });
  t.equal(config.storage.redis.key_prefix, 'team-a:', 'a value ending in ":" from the environment is a string, not a map');
  t.same(config.storage.redis.cluster, ['10.0.0.1:7000', '[::1]:7001'], 'a flow list from the environment is a list');
  t.equal(config.fleet.sync_interval_ms, 100);
  t.equal(config.fleet.breaker.failure_threshold, 3);
  t.same(
    problemsOf(() => loadConfig({ env: { RIVVEN_FLEET_ENABLED: 'true' }, cwd })),
    ['RIVVEN_FLEET_ENABLED (fleet.enabled): needs storage.backend: redis (the fleet shares its buckets through Redis)'],
  );
  const bad = problemsOf(() =>
    loadConfig({
      cwd,
      env: {},
      flags: {
        storage: { redis: { key_prefix: 'a{b}:', cluster: ['nohost'], sentinel: { name: 'm', nodes: ['h:1'] } } },
        fleet: { sync_interval_ms: 5 },
      },
    }),
  );
  t.match(bad.join('\n'), /key_prefix may not contain \{ or \}/);
  t.match(bad.join('\n'), /storage\.redis\.cluster\.0: expected host:port/);
  t.match(bad.join('\n'), /fleet\.sync_interval_ms/);
  const both = problemsOf(() =>
    loadConfig({ cwd, env: {}, flags: { storage: { redis: { cluster: ['h:1'], sentinel: { name: 'm', nodes: ['h:2'] } } } } }),
  );
  t.same(both, ['storage.redis.cluster: cluster and sentinel exclude each other']);
});

t.test('a YAML error names the line and shows it, without a dangling colon', async (t) => {
  const [problem] = problemsOf(() => loadConfig({ file: file('nested.yaml', 'server:\n  port: 1\n   host: x\n'), env: {} }));
  t.match(problem, /nested\.yaml:2:\d+: Nested mappings are not allowed in compact mappings \(here: " {2}port: 1"\)$/);
  t.notMatch(problem, /:$/, 'no colon left at the end');
});

t.test('an unknown key gets a "did you mean" from the keys beside it', async (t) => {
  const problems = problemsOf(() =>
    loadConfig({
      file: file('typos.yaml', 'server:\n  prot: 1\nmetric:\n  port: 1\nquotas:\n  default:\n    request_rate: 1\n  colour: x\n'),
      env: {},
    }),
  );
  t.same(problems.sort(), [
    'metric: unknown key (did you mean metrics?)',
    'quotas.colour: unknown key',
    'quotas.default: unknown key (did you mean defaults?)',
    'server.prot: unknown key (did you mean port?)',
  ]);
});

t.test('a value from a flag is reported under the flag', async (t) => {
  const flags = { server: { port: 'abc' } };
  t.match(
    problemsOf(() => loadConfig({ flags, flagNames: { 'server.port': '--port' }, env: {}, cwd: dir })),
    [/^--port \(server\.port\): /],
  );
  t.match(
    problemsOf(() => loadConfig({ flags: {}, flagNames: { 'server.port': '--port' }, env: { RIVVEN_SERVER_PORT: 'abc' }, cwd: dir })),
    [/^RIVVEN_SERVER_PORT \(server\.port\): /],
    'a flag not given is not named',
  );
});

t.test('quota values in rivven.yaml and RIVVEN_* take the one grammar (docs/protocol.md, Quota values)', async (t) => {
  const env = { RIVVEN_QUOTAS_DEFAULTS_REQUEST_RATE: '5k', RIVVEN_QUOTAS_DEFAULTS_PRODUCE_BYTES_RATE: '10MiB/s' };
  const { config } = loadConfig({ env, cwd: dir });
  t.equal(config.quotas.defaults.request_rate, 5000, 'a count multiplier');
  t.equal(config.quotas.defaults.produce_bytes_rate, 10 * 2 ** 20, 'a byte suffix and /s, held canonical');
  const tiers = file(
    'tiers.yaml',
    'tiers:\n  pro:\n    request_rate: 60/s\n    request_burst: 120\n    produce_bytes_burst: 1MB\n    max_in_flight: unlimited\n',
  );
  t.same(loadConfig({ file: tiers, env: {} }).config.tiers.pro, {
    request_rate: 60,
    request_burst: 120,
    produce_bytes_burst: 1e6,
    max_in_flight: 'unlimited',
  });
  t.equal(
    loadConfig({ env: { RIVVEN_QUOTAS_DEFAULTS_REQUEST_RATE: '10/min' }, cwd: dir }).config.quotas.defaults.request_rate,
    '10/min',
    'a rate per minute, held canonical',
  );
  t.same(
    loadConfig({ env: { RIVVEN_QUOTAS_DEFAULTS_PRODUCE_BYTES_RATE: '100GB/d,10MB/s' }, cwd: dir }).config.quotas.defaults
      .produce_bytes_rate,
    [1e7, '100000000000/d'],
    'a list with commas, canonical: sorted, base units',
  );
  t.match(
    problemsOf(() => loadConfig({ env: { RIVVEN_QUOTAS_DEFAULTS_REQUEST_RATE: '10/fortnight' }, cwd: dir })),
    [/^RIVVEN_QUOTAS_DEFAULTS_REQUEST_RATE \(quotas\.defaults\.request_rate\): "10\/fortnight": unknown unit "fortnight"/],
    'a bad unit names the variable',
  );
  t.match(
    problemsOf(() => loadConfig({ env: { RIVVEN_QUOTAS_DEFAULTS_REQUEST_RATE: '[10/s, 10/s]' }, cwd: dir })),
    [/request_rate\): .*two rates per s/],
    'a YAML list in a variable',
  );
  const bad = file('bad-tier.yaml', 'tiers:\n  free:\n    max_in_flight: 5/s\n    request_rate: [1/s, 2/min, 3/h, 4/d, 5/s]\n');
  t.match(
    problemsOf(() => loadConfig({ file: bad, env: {} })),
    [/tiers\.free\.request_rate: 5 rates/, /tiers\.free\.max_in_flight: .*whole count, with no unit of time/],
  );
});

t.test("named resources from RIVVEN_*: the list as an operator writes it, and each resource's defaults", async (t) => {
  const env = {
    RIVVEN_QUOTAS_RESOURCES: 'orders, services',
    RIVVEN_QUOTAS_DEFAULTS_ORDERS_RATE: '10/min',
    RIVVEN_QUOTAS_DEFAULTS_ORDERS_BURST: '20',
  };
  const { config, warnings } = loadConfig({ env });
  t.same(config.quotas.resources, ['orders', 'services']);
  const defaults = config.quotas.defaults as Record<string, unknown>;
  t.equal(defaults.orders_rate, '10/min', 'a resource default from its variable (it was "not a rivven setting")');
  t.equal(defaults.orders_burst, 20);
  t.same(warnings, [], 'no variable taken for an unknown one');
  const fromFile = file('r.yaml', 'quotas:\n  resources: [events]\n');
  const loaded = loadConfig({ file: fromFile, env: { RIVVEN_QUOTAS_DEFAULTS_EVENTS_RATE: '5/s,100/d' } });
  t.same((loaded.config.quotas.defaults as Record<string, unknown>).events_rate, [5, '100/d'], "the file's resources have variables too");
  t.same(loadConfig({ env: { RIVVEN_QUOTAS_RESOURCES: '[orders]' } }).config.quotas.resources, ['orders'], 'a YAML flow list still works');
  const other = loadConfig({ env: { RIVVEN_QUOTAS_DEFAULTS_ORDERS_RATE: '10/min' } });
  t.match(other.warnings.join('\n'), /RIVVEN_QUOTAS_DEFAULTS_ORDERS_RATE is not a rivven setting/, 'an undeclared resource has none');
});
