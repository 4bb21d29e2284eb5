import { spawn } from 'node:child_process';
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { BIN, cleanEnv, run, serve, runInProcess } from '../helpers/cli.js';
import { makeCerts, type TestCerts } from '../helpers/certs.js';
import { startServer } from '../helpers/server.js';
import { QuotaClient } from '../../src/client/quota-client.js';
import { logLine } from '../helpers/wait.js';

// What a new user tripped on (issue 24): each check runs the real bin/rivven.
const tmp = () => mkdtempSync(join(tmpdir(), 'rivven-first-use-'));

/** One set of certificates for the file's TLS tests (openssl runs a dozen times per set); none changes them. */
let certsMade: TestCerts | undefined;
const fileCerts = (): TestCerts => (certsMade ??= makeCerts());

t.test('a reader that closes the pipe early ends the CLI quietly: no EPIPE stack trace', async (t) => {
  const child = spawn(process.execPath, [BIN, 'quota', '--help'], { env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  // The read end is closed before the help is written: every write the child makes fails with EPIPE.
  child.stdout.destroy();
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  t.equal(stderr, '', 'nothing on stderr');
  t.equal(code, 0);
});

t.test('--metrics-port sets the metrics port; a port in use names its setting and flag', async (t) => {
  const blocker = net.createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  t.teardown(() => blocker.close());
  const busy = (blocker.address() as net.AddressInfo).port;
  const cwd = tmp();
  const failed = await run(['serve', '--port', '0', '--metrics-port', String(busy), '--data-dir', 'data'], { cwd });
  t.equal(failed.code, 1);
  t.match(
    failed.stdout,
    new RegExp(`metrics\\.port ${busy} \\(the /metrics port; --metrics-port, RIVVEN_METRICS_PORT\\) is in use .*EADDRINUSE`),
  );
  const s = await serve(['--metrics-port', '0', '--data-dir', 'data'], cwd);
  t.teardown(() => s.child.kill('SIGKILL'));
  t.match(
    s.logs.find((l) => l.msg === 'rivven listening'),
    { metrics: /^http:\/\/127\.0\.0\.1:\d+\/metrics$/ },
  );
  const again = await run(['serve', '--port', String(s.port), '--data-dir', 'data2'], { cwd });
  t.match(again.stdout, new RegExp(`server\\.port ${s.port} \\(the protocol port; --port, RIVVEN_SERVER_PORT\\) is in use`));
});

t.test('a torn last change in quotas.log is cut off with a warning naming the file and the bytes', async (t) => {
  const cwd = tmp();
  const data = join(cwd, 'data');
  mkdirSync(data);
  const log = join(data, 'quotas.log');
  writeFileSync(log, `${JSON.stringify({ seq: 1, changes: [{ entity: [['user', 'a']], quota_key: 'request_rate', quota_value: 5 }] })}\n`);
  const whole = statSync(log).size;
  const torn = '{"seq":2,"changes":[{"entity":[["user","b"]],"quo';
  appendFileSync(log, torn);
  const s = await serve(['--data-dir', data], cwd);
  s.child.kill('SIGTERM');
  await s.exited;
  t.match(
    s.logs.find((l) => l.level === 'warn'),
    { file: log, dropped_bytes: torn.length, msg: /^quota log: a torn last change/ },
  );
  t.equal(statSync(log).size, whole, 'cut back to the last whole change');
  t.match(
    s.logs.find((l) => l.msg === 'rivven listening'),
    { store: `file ${data}/quotas.json + ${log}`, stored_quotas: 1 },
  );
  const clean = await serve(['--data-dir', data], cwd);
  clean.child.kill('SIGTERM');
  await clean.exited;
  t.notOk(
    clean.logs.some((l) => l.level === 'warn'),
    'no warning when nothing was torn',
  );
});

t.test('TLS: a bad PEM file is named at start and on SIGHUP; the start line says https for metrics on TLS', async (t) => {
  const certs = fileCerts();
  const cwd = tmp();
  const config = join(cwd, 'rivven.yaml');
  const cert = join(cwd, 'server.pem');
  writeFileSync(cert, certs.read(certs.serverCert));
  writeFileSync(
    config,
    `server:\n  tls:\n    cert: ${cert}\n    key: ${certs.serverKey}\nmetrics:\n  tls:\n    cert: ${certs.serverCert}\n    key: ${certs.serverKey}\n`,
  );
  const s = await serve(['--config', config, '--data-dir', 'data'], cwd);
  t.teardown(() => s.child.kill('SIGKILL'));
  t.match(
    s.logs.find((l) => l.msg === 'rivven listening'),
    { metrics: /^https:\/\// },
  );
  writeFileSync(cert, 'not a certificate\n');
  s.child.kill('SIGHUP');
  const failed = await logLine(s.logs, /^SIGHUP/);
  t.equal(failed.level, 'error');
  t.ok(String(failed.err).startsWith(`server.tls.cert ${cert} is not a PEM certificate: `), String(failed.err));
  const start = await run(['serve', '--config', config, '--data-dir', 'data2'], { cwd });
  t.equal(start.code, 1);
  t.match(start.stdout, /"server\.tls\.cert \S+server\.pem is not a PEM certificate: [^"]+","msg":"cannot start"/);
});

t.test('TLS from the client: a CA path works; a plaintext client on a TLS port, or TLS on a plain one, is told so', async (t) => {
  const certs = fileCerts();
  const secure = await startServer({ server: { tls: { cert: certs.serverCert, key: certs.serverKey } } });
  t.teardown(() => secure.stop());
  const plain = await startServer();
  t.teardown(() => plain.stop());
  const byPath = await QuotaClient.connect({ port: secure.port, tls: { ca: certs.ca } });
  t.same(await byPath.recordRequest({ user: 'p' }), { throttleTimeMs: 0, recorded: true }, 'tls.ca may name a file');
  await byPath.close();
  await t.rejects(QuotaClient.connect({ port: secure.port, tls: { ca: join(certs.dir, 'missing.pem') } }), {
    message: /^tls\.ca: \S+missing\.pem is neither PEM text nor a readable file \(ENOENT\)$/,
  });
  await t.rejects(QuotaClient.connect({ port: secure.port, tls: {} }), {
    code: 'CONNECTION_CLOSED',
    message:
      /^TLS to the rivven server at 127\.0\.0\.1:\d+ failed \([A-Z_]+\): the server's certificate is not signed by a CA this client trusts: give the CA that signed it as tls\.ca/,
  });

  const plaintextToTls = await runInProcess(['quota', 'list', '--server', `127.0.0.1:${secure.port}`]);
  t.equal(plaintextToTls.code, 1);
  t.match(
    plaintextToTls.stderr,
    /^rivven: the rivven server at 127\.0\.0\.1:\d+ speaks TLS and this client connected without it: .*--tls-ca <ca\.pem>/,
  );
  t.notMatch(plaintextToTls.stderr, /is `rivven serve` running there/, 'no hint that points the wrong way');
  const tlsToPlain = await runInProcess(['quota', 'list', '--server', `127.0.0.1:${plain.port}`, '--tls-ca', certs.ca]);
  t.equal(tlsToPlain.code, 1);
  t.match(
    tlsToPlain.stderr,
    /^rivven: TLS to the rivven server at 127\.0\.0\.1:\d+ failed \(ERR_SSL_WRONG_VERSION_NUMBER\): the server does not speak TLS/,
  );
  const stopped = await runInProcess(['quota', 'list', '--server', '127.0.0.1:1']);
  t.match(stopped.stderr, /is `rivven serve` running there/, 'a refused connection keeps its hint');
});

t.test('docs/operations.md gives the number of rivven_* series /metrics really has, before and after traffic', async (t) => {
  const s = await startServer();
  t.teardown(() => s.stop());
  const doc = readFileSync(new URL('../../docs/operations.md', import.meta.url), 'utf8').replace(/\s+/g, ' ');
  const [, busy, fresh] =
    /The series count is fixed: (\d+) sample lines of ours once there is traffic \((\d+) on a fresh sidecar/.exec(doc) ?? [];
  const count = async () => (await s.app.metrics.metrics()).split('\n').filter((l) => l.startsWith('rivven_')).length;
  t.equal(await count(), Number(fresh), 'a fresh sidecar');
  const c = await QuotaClient.connect({ port: s.port });
  t.teardown(() => c.close());
  for (let i = 0; i < 5; i++) await c.recordProduce({ user: `u${i}`, clientId: `c${i}`, bytes: 1e9 });
  await c.request({ type: 'NoSuchRequest' }).catch(() => undefined);
  t.equal(await count(), Number(busy), 'with buckets: no series per principal or per unknown type');
});
