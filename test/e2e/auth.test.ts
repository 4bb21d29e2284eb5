import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import t from 'tap';
import { Identities, matchDigest, sha256 } from '../../src/auth/identities.js';
import { QuotaClient } from '../../src/client/quota-client.js';
import { ConfigError, loadConfig } from '../../src/config/load.js';
import { encodeFrame } from '../../src/protocol/codec.js';
import { MemoryQuotaStore } from '../../src/store/quota-store.js';
import { makeCerts } from '../helpers/certs.js';
import { run, serve, runInProcess } from '../helpers/cli.js';
import { startServer } from '../helpers/server.js';
import { WirePeer } from '../helpers/wire.js';
import { logLine } from '../helpers/wait.js';

const certs = makeCerts();
const token = (name: string) => `rvn_${name}_${randomBytes(16).toString('hex')}`;
const TOKENS = { rec: token('rec'), desc: token('desc'), alt: token('alt'), none: token('none'), all: token('all') };
const digest = (s: string) => createHash('sha256').update(s).digest('hex');

function tokensFile(extra: string[] = []): string {
  const dir = mkdtempSync(join(tmpdir(), 'rivven-tokens-'));
  const lines = [
    'tokens:',
    `  - { name: recorder, sha256: ${digest(TOKENS.rec)}, roles: [record] }`,
    `  - { name: reader, sha256: ${digest(TOKENS.desc)}, roles: [describe] }`,
    `  - { name: operator, sha256: ${digest(TOKENS.alt)}, roles: [alter] }`,
    `  - { name: nobody, sha256: ${digest(TOKENS.none)}, roles: [] }`,
    `  - { name: admin, sha256: ${digest(TOKENS.all)}, roles: [record, describe, alter] }`,
    '  - { name: broker-1-cert, cn: broker-1, roles: [record] }',
    ...extra,
  ];
  const file = join(dir, 'tokens.yaml');
  writeFileSync(file, `${lines.join('\n')}\n`);
  return file;
}

/** Each request type and the role it needs ('' for none). */
const REQUESTS: [string, Record<string, unknown>, string][] = [
  ['RecordProduce', { type: 'RecordProduce', user: 'u', bytes: 1 }, 'record'],
  ['RecordConsume', { type: 'RecordConsume', user: 'u', consumer_group: 'g', bytes: 1 }, 'record'],
  ['RecordRequest', { type: 'RecordRequest', user: 'u' }, 'record'],
  ['AcquireLease', { type: 'AcquireLease', user: 'u' }, 'record'],
  ['ReleaseLease', { type: 'ReleaseLease', lease_id: 'none' }, 'record'],
  ['ResetUsage', { type: 'ResetUsage', entities: [['user', 'nobody']] }, 'alter'],
  ['DescribeViolations', { type: 'DescribeViolations' }, 'describe'],
  ['DescribeFleet', { type: 'DescribeFleet' }, 'describe'],
  ['DescribeQuotas', { type: 'DescribeQuotas' }, 'describe'],
  ['DescribeUsage', { type: 'DescribeUsage' }, 'describe'],
  [
    'AlterQuotas',
    { type: 'AlterQuotas', alterations: [{ entity: [['user', 'm']], quota_key: 'request_rate', quota_value: 9 }], validate_only: true },
    'alter',
  ],
  ['Ping', { type: 'Ping' }, ''],
];

t.test('the role x request matrix: each request type against each role', async (t) => {
  const s = await startServer({ auth: { tokens_file: tokensFile() } });
  t.teardown(() => s.stop());
  const roles: [keyof typeof TOKENS, string[]][] = [
    ['rec', ['record']],
    ['desc', ['describe']],
    ['alt', ['alter']],
    ['none', []],
    ['all', ['record', 'describe', 'alter']],
  ];
  for (const [who, has] of roles) {
    const c = await WirePeer.connect(s.port);
    t.match(await c.request({ type: 'Hello', protocol_version: 1, token: TOKENS[who] }), { type: 'HelloOk' }, `${who}: Hello`);
    let id = 2;
    for (const [name, body, needs] of REQUESTS) {
      const reply = await c.request(body, id++);
      if (needs === '' || has.includes(needs)) t.not(reply.type, 'Error', `${who} may ${name}`);
      else t.match(reply, { type: 'Error', code: 'AUTHORIZATION_FAILED' }, `${who} may not ${name}`);
    }
    t.same(await c.request({ type: 'Ping' }, 99), { type: 'Pong' }, `${who}: the connection stays after refusals`);
    c.close();
  }
});

t.test('no token: AUTHENTICATION_REQUIRED and the connection stays; a wrong token: AUTHENTICATION_FAILED and it closes', async (t) => {
  const s = await startServer({ auth: { tokens_file: tokensFile() } });
  t.teardown(() => s.stop());
  const c = await WirePeer.connect(s.port);
  for (const [name, body] of REQUESTS) {
    t.match(await c.request(body), { type: 'Error', code: 'AUTHENTICATION_REQUIRED' }, `${name} before Hello`);
  }
  t.match(
    await c.request({ type: 'Hello', protocol_version: 1 }),
    { type: 'Error', code: 'AUTHENTICATION_REQUIRED' },
    'Hello without a token',
  );
  t.match(await c.request({ type: 'Hello', protocol_version: 1, token: TOKENS.rec }), { type: 'HelloOk' }, 'then Hello with one');
  t.same(await c.request({ type: 'RecordRequest', user: 'u' }), { type: 'Ok', throttle_time_ms: 0 });
  c.close();

  const failuresBefore = s.app.guard.failures;
  const bad = await WirePeer.connect(s.port);
  bad.send(1, { type: 'Hello', protocol_version: 1, token: 'rvn_guessed' });
  bad.send(2, { type: 'Ping' });
  await bad.closed();
  t.match(
    bad.replies,
    [{ correlationId: 1, body: { type: 'Error', code: 'AUTHENTICATION_FAILED' } }],
    'answered, then closed: nothing after it is answered',
  );
  t.equal(s.app.guard.failures, failuresBefore + 1, 'counted');
  const metrics = await s.app.metrics.getSingleMetricAsString('rivven_auth_failures_total');
  t.match(metrics, /rivven_auth_failures_total [1-9]/);
});

t.test('the audit log carries the authenticated name', async (t) => {
  const store = new MemoryQuotaStore();
  const s = await startServer({ auth: { tokens_file: tokensFile() } }, store);
  t.teardown(() => s.stop());
  const c = await QuotaClient.connect({ port: s.port, token: TOKENS.alt, clientName: 'ops-laptop' });
  t.teardown(() => c.close());
  await c.alterQuotas([{ entity: [['user', 'audited']], quota_key: 'request_rate', quota_value: 3 }]);
  t.match(store.audit, [{ principal: 'operator', client: 'ops-laptop', entity: [['user', 'audited']] }]);
  // Violation events name the authenticated connection that reported them.
  const broker = await QuotaClient.connect({ port: s.port, token: TOKENS.rec });
  t.teardown(() => broker.close());
  await broker.recordRequest({ user: 'audited', count: 10 });
  t.match((await s.app.violations.query({ limit: 10 })).events, [
    { type: 'RATE_LIMIT_EXCEEDED', entity: 'user:audited', reported_by: 'recorder' },
  ]);
});

t.test('an open server (no tokens file) refuses a non-loopback host unless allow_anonymous', async (t) => {
  const load =
    (server: Record<string, unknown>, auth: Record<string, unknown> = {}) =>
    () =>
      loadConfig({ env: {}, cwd: '/nonexistent', flags: { server, auth } });
  t.throws(load({ host: '0.0.0.0' }), ConfigError);
  t.throws(load({ host: '0.0.0.0' }), /anyone who reaches the port could change every quota\. Set auth\.tokens_file/);
  t.doesNotThrow(load({ host: '0.0.0.0' }, { allow_anonymous: true }), 'allowed explicitly');
  t.doesNotThrow(load({ host: '0.0.0.0' }, { tokens_file: '/etc/rivven/tokens.yaml' }), 'with a tokens file');
  for (const host of ['127.0.0.1', '127.1.2.3', '::1', 'localhost']) t.doesNotThrow(load({ host }), `${host} is loopback`);
  const r = await run(['serve', '--host', '0.0.0.0', '--port', '0'], { cwd: mkdtempSync(join(tmpdir(), 'rivven-open-')) });
  t.equal(r.code, 2, 'the real server exits 2');
  t.match(r.stderr, /auth\.allow_anonymous/);
});

t.test('TLS: a client that trusts the CA talks; a plaintext client on the TLS port gets nothing and is counted', async (t) => {
  const s = await startServer({ server: { tls: { cert: certs.serverCert, key: certs.serverKey } } });
  t.teardown(() => s.stop());
  const c = await QuotaClient.connect({ port: s.port, tls: { ca: certs.read(certs.ca) } });
  t.teardown(() => c.close());
  t.same(await c.recordRequest({ user: 'tls' }), { throttleTimeMs: 0, recorded: true });
  const plain = await WirePeer.connect(s.port);
  plain.send(1, { type: 'Ping' });
  await plain.closed();
  t.same(plain.replies, [], 'no reply to plaintext');
  t.equal(s.app.server.failedHandshakes, 1);
  const untrusting = await QuotaClient.connect({ port: s.port, tls: {}, connectAttempts: 1 }).catch((e: unknown) => e);
  t.match(untrusting, { code: 'CONNECTION_CLOSED' }, "a client that does not trust the server's certificate does not connect");
});

t.test("mTLS: a client certificate's CN names the identity; without one, or with an untrusted one, no connection", async (t) => {
  const s = await startServer({
    server: { tls: { cert: certs.serverCert, key: certs.serverKey, ca: certs.ca, client_auth: 'require' } },
    auth: { tokens_file: tokensFile() },
  });
  t.teardown(() => s.stop());
  const withCert = await QuotaClient.connect({
    port: s.port,
    tls: { ca: certs.read(certs.ca), cert: certs.read(certs.clientCert), key: certs.read(certs.clientKey) },
  });
  t.teardown(() => withCert.close());
  t.same(
    await withCert.recordRequest({ user: 'mtls' }),
    { throttleTimeMs: 0, recorded: true },
    'authenticated by its certificate, no token',
  );
  t.match(
    await withCert.describeQuotas().catch((e: unknown) => e),
    { code: 'AUTHORIZATION_FAILED', message: /broker-1-cert may not/ },
    'with the roles of its entry',
  );
  for (const [name, extra] of [
    ['no certificate', {}],
    ['an untrusted certificate', { cert: certs.read(certs.rogueCert), key: certs.read(certs.rogueKey) }],
  ] as const) {
    const err = await QuotaClient.connect({ port: s.port, connectAttempts: 1, tls: { ca: certs.read(certs.ca), ...extra } }).catch(
      (e: unknown) => e,
    );
    t.match(err, { code: 'CONNECTION_CLOSED' }, `${name}: refused`);
  }
});

t.test('metrics over TLS with a bearer token: /metrics needs it, the probes do not', async (t) => {
  const metricsToken = 'rvn_metrics_secret';
  const s = await startServer({ metrics: { tls: { cert: certs.serverCert, key: certs.serverKey }, token_sha256: digest(metricsToken) } });
  t.teardown(() => s.stop());
  const port = (await s.app.httpListening)!.port;
  const get = (path: string, auth?: string) =>
    new Promise<number>((resolve, reject) =>
      https
        .get(
          {
            host: '127.0.0.1',
            port,
            path,
            ca: certs.read(certs.ca),
            servername: 'localhost',
            headers: auth ? { authorization: auth } : {},
          },
          (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          },
        )
        .on('error', reject),
    );
  t.equal(await get('/metrics'), 401, 'no token');
  t.equal(await get('/metrics', 'Bearer wrong'), 401, 'a wrong token');
  t.equal(await get('/metrics', `Bearer ${metricsToken}`), 200, 'the token');
  t.equal(await get('/healthz'), 200, 'probes stay open');
  t.equal(await get('/readyz'), 200);
});

t.test('SIGHUP reloads the tokens file and the certificate; existing connections stay', async (t) => {
  const file = tokensFile();
  // Its own certificates: this test replaces the server's files on disk.
  const certs = makeCerts();
  const cwd = mkdtempSync(join(tmpdir(), 'rivven-reload-'));
  const config = join(cwd, 'rivven.yaml');
  writeFileSync(config, `server:\n  tls:\n    cert: ${certs.serverCert}\n    key: ${certs.serverKey}\nauth:\n  tokens_file: ${file}\n`);
  const s = await serve(['--config', config, '--log-level', 'trace'], cwd);
  t.teardown(() => s.child.kill('SIGKILL'));
  const ca = certs.read(certs.ca);
  const before = await QuotaClient.connect({ port: s.port, token: TOKENS.rec, tls: { ca } });
  const created = await run(['token', 'create', '--name', 'late-broker', '--roles', 'record', '--file', file]);
  t.equal(created.code, 0, created.stderr);
  const lateToken = created.stdout.trim();
  t.match(
    await QuotaClient.connect({ port: s.port, token: lateToken, tls: { ca }, connectAttempts: 1 }).catch((e: unknown) => e),
    { code: 'AUTHENTICATION_FAILED' },
    'not before the reload',
  );
  const fingerprint = () =>
    new Promise<string>((resolve) => {
      const sock = tls.connect({ port: s.port, host: '127.0.0.1', ca, servername: 'localhost' }, () => {
        resolve(sock.getPeerCertificate().fingerprint256);
        sock.destroy();
      });
    });
  const oldPrint = await fingerprint();
  // A second server certificate from the same CA, put in place of the first.
  const next = makeCerts();
  writeFileSync(config, `server:\n  tls:\n    cert: ${next.serverCert}\n    key: ${next.serverKey}\nauth:\n  tokens_file: ${file}\n`);
  writeFileSync(certs.serverCert, next.read(next.serverCert));
  writeFileSync(certs.serverKey, next.read(next.serverKey));
  s.child.kill('SIGHUP');
  await logLine(s.logs, 'SIGHUP');
  t.match(
    s.logs.find((l) => String(l.msg).startsWith('SIGHUP')),
    { msg: /reloaded/ },
  );
  const after = await QuotaClient.connect({ port: s.port, token: lateToken, tls: { ca: Buffer.concat([ca, next.read(next.ca)]) } });
  t.same(await after.recordRequest({ user: 'late' }), { throttleTimeMs: 0, recorded: true }, 'the new token works after SIGHUP');
  t.same(
    await before.recordRequest({ user: 'early' }),
    { throttleTimeMs: 0, recorded: true },
    'the connection made before the reload still works',
  );
  t.not(
    await new Promise<string>((resolve) => {
      const sock = tls.connect({ port: s.port, host: '127.0.0.1', ca: next.read(next.ca), servername: 'localhost' }, () => {
        resolve(sock.getPeerCertificate().fingerprint256);
        sock.destroy();
      });
    }),
    oldPrint,
    'new connections get the new certificate',
  );
  // Tokens appear in no log line, even at trace level.
  const bad = await WirePeer.connect(s.port).catch(() => undefined);
  bad?.close();
  const logText = s.logs.map((l) => JSON.stringify(l)).join('\n');
  for (const secret of [TOKENS.rec, lateToken]) t.notMatch(logText, secret, 'no token in the logs');
  await before.close();
  await after.close();
  s.child.kill('SIGTERM');
  t.equal(await s.exited, 0);
});

t.test('a wrong token is logged with the remote address, never the token', async (t) => {
  const cwd = mkdtempSync(join(tmpdir(), 'rivven-authlog-'));
  const s = await serve(['--log-level', 'trace'], cwd, { env: { RIVVEN_AUTH_TOKENS_FILE: tokensFile() } });
  t.teardown(() => s.child.kill('SIGKILL'));
  const guess = `rvn_guess_${randomBytes(8).toString('hex')}`;
  const c = await WirePeer.connect(s.port);
  c.sendRaw(encodeFrame(1, { type: 'Hello', protocol_version: 1, token: guess }));
  await c.closed();
  await logLine(s.logs, /^authentication failed$/);
  t.match(
    s.logs.find((l) => l.msg === 'authentication failed'),
    { level: 'warn', remote: /^127\.0\.0\.1:\d+$/, code: 'AUTHENTICATION_FAILED' },
  );
  t.notMatch(s.logs.map((l) => JSON.stringify(l)).join('\n'), guess, 'the guessed token is in no log line');
});

t.test('the CLI: --token and --tls-ca reach a secured server; a wrong token is one clear line, exit 1', async (t) => {
  const s = await startServer({
    server: { tls: { cert: certs.serverCert, key: certs.serverKey } },
    auth: { tokens_file: tokensFile() },
  });
  t.teardown(() => s.stop());
  const args = ['--server', `localhost:${s.port}`, '--tls-ca', certs.ca];
  const ok = await run(['quota', 'set', '--user', 'cli', '--request-rate', '5', '--token', TOKENS.alt, ...args]);
  t.equal(ok.code, 0, ok.stderr);
  const list = await runInProcess(['quota', 'list', '--user', 'cli', '--json', ...args], { env: { RIVVEN_TOKEN: TOKENS.desc } });
  t.same(JSON.parse(list.stdout), [{ entity: [['user', 'cli']], quotas: { request_rate: 5 } }], 'RIVVEN_TOKEN works too');
  const wrong = await runInProcess(['quota', 'list', '--token', 'rvn_wrong', ...args]);
  t.equal(wrong.code, 1);
  t.match(wrong.stderr, /^rivven: AUTHENTICATION_FAILED: .* \(set --token or RIVVEN_TOKEN\)\n$/);
  const denied = await runInProcess(['quota', 'set', '--user', 'cli', '--request-rate', '6', '--token', TOKENS.desc, ...args]);
  t.equal(denied.code, 1);
  t.match(denied.stderr, /AUTHORIZATION_FAILED: reader may not make AlterQuotas requests/);
});

t.test('token comparison: constant time per entry, every entry compared, the first match wins', async (t) => {
  const entries = ['a', 'b', 'c'].map((n) => ({ digest: sha256(`token-${n}`), identity: { name: n, roles: 1 } }));
  t.equal(matchDigest(sha256('token-a'), entries)?.name, 'a', 'first');
  t.equal(matchDigest(sha256('token-c'), entries)?.name, 'c', 'last');
  t.equal(matchDigest(sha256('token-x'), entries), undefined, 'none');
  t.equal(matchDigest(sha256('token-b'), [...entries, { digest: sha256('token-b'), identity: { name: 'dup', roles: 1 } }])?.name, 'b');
  // Every entry is visited even after a match: a digest of the wrong length makes timingSafeEqual throw, so
  // placing one after the match shows the loop did not stop there.
  t.throws(
    () => matchDigest(sha256('token-a'), [...entries, { digest: Buffer.alloc(3), identity: { name: 'short', roles: 1 } }]),
    /byte length/,
  );
  const ids = Identities.from([{ name: 'x', sha256: sha256('t').toString('hex'), roles: ['record'] }]);
  t.equal(ids.byToken('t')?.name, 'x');
  t.equal(ids.byToken('T'), undefined);
  t.throws(() => Identities.load('/nonexistent/tokens.yaml'), /tokens file \/nonexistent\/tokens\.yaml/);
});
