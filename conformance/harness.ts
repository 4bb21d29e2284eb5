// The conformance harness: one process every language's tests spawn (`node --import tsx conformance/harness.ts`
// from the repository root) to get real sidecars, hostile servers and the Node client's reference answers.
// It speaks line-delimited JSON: a request per line on stdin, one reply line per request on stdout, in order:
//   -> {"id": 1, "cmd": "start_sidecar", "clock": "real", "auth": true, "tls": "mtls"}
//   <- {"id": 1, "ok": true, "sidecar": "s1", "host": "127.0.0.1", "port": 40123, ...}
//   <- {"id": 2, "ok": false, "error": "unknown sidecar s9"}
// Its first line is {"ready": true, "format": 1}. Logs go to stderr. EOF on stdin (the test ended, or died)
// kills everything it started and exits. conformance/README.md lists every command.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { App } from '../src/app.js';
import { BrokerQuotas } from '../src/client/broker-quotas.js';
import { QuotaClient, type QuotaClientOptions } from '../src/client/quota-client.js';
import { loadConfig } from '../src/config/load.js';
import { silentLogger } from '../src/observability/logger.js';
import { encodeFrame } from '../src/protocol/codec.js';
import type { QuotaAlteration } from '../src/protocol/messages/alter-quotas.js';
import * as hello from '../src/protocol/messages/hello.js';
import { ManualClock } from '../src/quota/clock.js';
import { MemoryQuotaStore } from '../src/store/quota-store.js';
import { tcpProxy } from '../test/helpers/tcp-proxy.js';

const ROOT = new URL('../', import.meta.url).pathname;
const BIN = join(ROOT, 'bin/rivven');
export const SCENARIOS = JSON.parse(readFileSync(new URL('./scenarios.json', import.meta.url), 'utf8')) as {
  scenarios: Record<string, Record<string, unknown>>;
};

type Args = Record<string, unknown>;
type Result = Record<string, unknown>;

/** Fixed names, random secrets: admin has every role, recorder only record, nobody none. */
const ROLES: Record<string, string[]> = { admin: ['record', 'describe', 'alter'], recorder: ['record'], nobody: [] };

interface Certs {
  ca: string;
  server_cert: string;
  server_key: string;
  client_cert: string;
  client_key: string;
  rogue_cert: string;
  rogue_key: string;
  server_name: string;
}

/** A CA, a server certificate for localhost and 127.0.0.1, a client certificate CN=broker-1, a rogue one. */
function makeCerts(dir: string): Certs {
  const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  const key = (n: string) => ssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', `${n}.key`);
  const selfSigned = (n: string, cn: string) => {
    key(n);
    ssl('req', '-x509', '-new', '-key', `${n}.key`, '-subj', `/CN=${cn}`, '-days', '2', '-out', `${n}.pem`);
  };
  const signed = (n: string, cn: string, ext: string) => {
    key(n);
    ssl('req', '-new', '-key', `${n}.key`, '-subj', `/CN=${cn}`, '-out', `${n}.csr`);
    writeFileSync(join(dir, `${n}.ext`), ext);
    ssl(
      'x509',
      '-req',
      '-in',
      `${n}.csr`,
      '-CA',
      'ca.pem',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-days',
      '2',
      '-extfile',
      `${n}.ext`,
      '-out',
      `${n}.pem`,
    );
  };
  selfSigned('ca', 'rivven conformance CA');
  signed('server', 'localhost', 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  signed('client', 'broker-1', 'extendedKeyUsage=clientAuth\n');
  selfSigned('rogue', 'broker-1');
  const p = (f: string) => join(dir, f);
  return {
    ca: p('ca.pem'),
    server_cert: p('server.pem'),
    server_key: p('server.key'),
    client_cert: p('client.pem'),
    client_key: p('client.key'),
    rogue_cert: p('rogue.pem'),
    rogue_key: p('rogue.key'),
    server_name: 'localhost',
  };
}

/** A sidecar: `bin/rivven serve` in its own process (clock real), or the same App in this process (clock manual). */
class Sidecar {
  child: ChildProcess | null = null;
  app: App | null = null;
  clock: ManualClock | null = null;
  port = 0;
  tokens: Record<string, string> = {};
  certs: Certs | null = null;
  private config = '';
  /** A process is reached through this proxy, which keeps `port` across restarts (see spawn). */
  private proxy: { port: number; close(): Promise<void> } | null = null;
  private childPort: number | undefined;

  constructor(
    readonly name: string,
    readonly dir: string,
    readonly args: Args,
  ) {}

  async start(): Promise<void> {
    const auth = this.args.auth === true;
    const tlsMode = (this.args.tls as string | undefined) ?? 'none';
    const lines: string[] = [];
    if (auth) {
      const entries = Object.entries(ROLES).map(([name, roles]) => {
        this.tokens[name] = `rvn_${name}_${createHash('sha256').update(`${this.dir}${name}${Math.random()}`).digest('hex').slice(0, 32)}`;
        const digest = createHash('sha256').update(this.tokens[name]!).digest('hex');
        return `  - { name: ${name}, sha256: ${digest}, roles: [${roles.join(', ')}] }`;
      });
      entries.push('  - { name: broker-1-cert, cn: broker-1, roles: [record] }');
      writeFileSync(join(this.dir, 'tokens.yaml'), `tokens:\n${entries.join('\n')}\n`);
      lines.push('auth:', `  tokens_file: ${join(this.dir, 'tokens.yaml')}`);
    }
    if (tlsMode !== 'none') {
      this.certs = makeCerts(this.dir);
      lines.push('server:', '  tls:', `    cert: ${this.certs.server_cert}`, `    key: ${this.certs.server_key}`);
      if (tlsMode === 'mtls') lines.push(`    ca: ${this.certs.ca}`, '    client_auth: require');
    }
    this.config = join(this.dir, 'rivven.yaml');
    writeFileSync(this.config, `${lines.join('\n')}\n`);
    if (this.args.clock === 'manual') await this.startInProcess();
    else await this.spawn();
  }

  private async startInProcess(): Promise<void> {
    const { config } = loadConfig({
      file: this.config,
      env: {},
      cwd: this.dir,
      flags: { server: { port: 0 }, metrics: { port: 0 }, storage: { data_dir: this.dir } },
    });
    this.clock = new ManualClock(1_000_000);
    this.app = new App(config, { logger: silentLogger(), store: new MemoryQuotaStore(), clock: this.clock });
    this.port = (await this.app.start()).port;
  }

  /**
   * `bin/rivven serve` on port 0, with the same data dir when restarted. Clients reach it through a proxy on a
   * port of the harness's own, so a restarted sidecar keeps its address without binding a port again: the port a
   * killed process freed can be taken by anything meanwhile (another test's outgoing connection, the client's own
   * reconnect). While the process is down the proxy closes each connection at once.
   */
  async spawn(): Promise<void> {
    this.proxy ??= await tcpProxy(() => this.childPort);
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) if (k !== 'NODE_OPTIONS' && !k.startsWith('RIVVEN_')) env[k] = v;
    env.RIVVEN_METRICS_PORT = '0';
    for (const [k, v] of Object.entries((this.args.env as Record<string, string> | undefined) ?? {})) env[k] = v;
    const argv = [BIN, 'serve', '--config', this.config, '--port', '0', '--data-dir', this.dir, '--log-level', 'info'];
    const child = spawn(process.execPath, argv, { cwd: this.dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-4000);
    });
    this.childPort = await new Promise<number>((resolve, reject) => {
      // Every line is read (the pipe must never fill), only the first 'rivven listening' matters.
      createInterface({ input: child.stdout! }).on('line', (line) => {
        if (!line.includes('rivven listening')) return;
        try {
          resolve(
            Number(
              String((JSON.parse(line) as { address: string }).address)
                .split(':')
                .pop(),
            ),
          );
        } catch (err) {
          reject(err);
        }
      });
      child.once('exit', (code, signal) => reject(new Error(`rivven serve exited (${code ?? signal}) before listening: ${stderr}`)));
    });
    this.port = this.proxy.port;
  }

  async signal(sig: string): Promise<void> {
    const child = this.child;
    if (child === null || child.pid === undefined) throw new Error(`${this.name} is not a process (clock manual?)`);
    if (sig === 'KILL' || sig === 'TERM') {
      this.childPort = undefined;
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      if (sig === 'KILL') child.kill('SIGCONT');
      child.kill(`SIG${sig}` as NodeJS.Signals);
      await exited;
      return;
    }
    child.kill(`SIG${sig}` as NodeJS.Signals);
    // A signal lands asynchronously: answer once the process really is stopped (or running again).
    const want = sig === 'STOP' ? 'T' : null;
    for (let i = 0; i < 2000; i++) {
      const state = readFileSync(`/proc/${child.pid}/stat`, 'utf8').split(') ')[1]![0];
      if (want === null ? state !== 'T' : state === want) return;
      await new Promise((r) => setTimeout(r, 1));
    }
    throw new Error(`${this.name} did not reach the state SIG${sig} asks for`);
  }

  async restart(): Promise<void> {
    await this.signal('KILL');
    await this.spawn();
  }

  /** Admin client options for this sidecar (the admin token, TLS with the CA and the client certificate). */
  clientOptions(): Partial<QuotaClientOptions> {
    const o: Partial<QuotaClientOptions> = { port: this.port, clientName: 'conformance-harness' };
    if (this.tokens.admin !== undefined) o.token = this.tokens.admin;
    if (this.certs !== null) {
      o.tls = {
        ca: readFileSync(this.certs.ca),
        cert: readFileSync(this.certs.client_cert),
        key: readFileSync(this.certs.client_key),
        servername: 'localhost',
      };
    }
    return o;
  }

  async stop(): Promise<void> {
    if (this.app !== null) await this.app.stop(1000);
    if (this.child !== null) await this.signal('KILL');
    await this.proxy?.close();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A server that answers Hello, then misbehaves (docs in conformance/README.md). */
export class Hostile {
  server: net.Server;
  bytesSent = 0;
  closedByPeer = false;
  private readonly sockets = new Set<net.Socket>();

  constructor(readonly mode: string) {
    this.server = net.createServer((s) => this.serve(s));
  }

  listen(): Promise<number> {
    return new Promise((resolve) => this.server.listen(0, '127.0.0.1', () => resolve((this.server.address() as net.AddressInfo).port)));
  }

  private serve(s: net.Socket): void {
    this.sockets.add(s);
    s.on('error', () => undefined);
    s.on('close', () => {
      this.closedByPeer = true;
      this.sockets.delete(s);
    });
    let buf = Buffer.alloc(0);
    let frames = 0;
    s.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= 8 && buf.length >= 4 + buf.readUInt32BE(0)) {
        const id = buf.readUInt32BE(4);
        buf = buf.subarray(4 + buf.readUInt32BE(0));
        if (this.mode === 'silent_hello') continue;
        if (frames++ === 0) {
          s.write(encodeFrame(id, hello.encodeReply({ protocolVersion: 1, serverVersion: 'hostile' })));
          continue;
        }
        this.misbehave(s, id);
      }
    });
  }

  private misbehave(s: net.Socket, id: number): void {
    const header = Buffer.alloc(8);
    switch (this.mode) {
      case 'oversized': {
        // A length of 2 GiB, then as many bytes as the client will take (at most 256 MiB): a client that trusts
        // the length buffers them all; a sound one closes the connection after the header.
        header.writeUInt32BE(0x7fffffff, 0);
        header.writeUInt32BE(id, 4);
        s.write(header);
        const chunk = Buffer.alloc(64 * 1024, 0x41);
        const pump = (): void => {
          while (!s.destroyed && this.bytesSent < 256 * 1024 * 1024) {
            this.bytesSent += chunk.length;
            if (!s.write(chunk)) {
              s.once('drain', pump);
              return;
            }
          }
        };
        pump();
        return;
      }
      case 'garbage': {
        // A well-framed reply to this very request whose body is not msgpack (0xc1 is never used).
        const body = Buffer.from([0xc1, 0xc1, 0xc1, 0xc1]);
        header.writeUInt32BE(4 + body.length, 0);
        header.writeUInt32BE(id, 4);
        s.write(Buffer.concat([header, body]));
        return;
      }
      case 'reset': {
        // Half a reply, then a TCP reset.
        header.writeUInt32BE(40, 0);
        header.writeUInt32BE(id, 4);
        s.write(Buffer.concat([header, Buffer.from([0x82, 0xa4])]), () => s.resetAndDestroy());
        return;
      }
      default:
        return; // silent: read everything, answer nothing
    }
  }

  close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

const sidecars = new Map<string, Sidecar>();
const hostiles = new Map<string, Hostile>();
let counter = 0;

function sidecar(args: Args): Sidecar {
  const s = sidecars.get(String(args.sidecar));
  if (s === undefined) throw new Error(`unknown sidecar ${String(args.sidecar)}`);
  return s;
}

function describe(s: Sidecar): Result {
  return { sidecar: s.name, host: '127.0.0.1', port: s.port, pid: s.child?.pid ?? null, tokens: s.tokens, tls: s.certs };
}

/** The broker wrapper's answer to one scenario step (a `call` of produce, fetch or request). */
function brokerCall(b: BrokerQuotas, step: Args): Promise<number> {
  const user = (step.user as string | null | undefined) ?? null;
  const clientId = (step.client_id as string | null | undefined) ?? null;
  switch (step.call) {
    case 'produce':
      return b.produce(user, clientId, step.bytes as number);
    case 'fetch':
      return b.fetch(user, clientId, (step.consumer_group as string | null | undefined) ?? null, step.bytes as number);
    case 'request':
      return b.request(user, clientId);
    default:
      throw new Error(`unknown call ${String(step.call)}`);
  }
}

/** The Node client's answers to a scenario, on a fresh manual-clock sidecar of its own. */
export async function reference(name: string): Promise<number[]> {
  const sc = SCENARIOS.scenarios[name];
  if (sc === undefined) throw new Error(`unknown scenario ${name}`);
  const s = new Sidecar(`ref${++counter}`, mkdtempSync(join(tmpdir(), 'rivven-conformance-')), { clock: 'manual' });
  await s.start();
  const clientOpts = (sc.client as { max_pending?: number; request_timeout_ms?: number } | undefined) ?? {};
  const c = await QuotaClient.connect({
    ...s.clientOptions(),
    maxPending: clientOpts.max_pending ?? 10_000,
    requestTimeoutMs: clientOpts.request_timeout_ms ?? 5000,
  });
  try {
    await c.alterQuotas(sc.setup as QuotaAlteration[]);
    const deadline = (sc.broker as { record_deadline_ms?: number } | undefined)?.record_deadline_ms ?? 5000;
    const b = new BrokerQuotas(c, { recordDeadlineMs: deadline });
    if (Array.isArray(sc.steps)) {
      const out: number[] = [];
      for (const step of sc.steps as Args[]) {
        if (typeof step.advance_ms === 'number') s.clock!.advance(step.advance_ms);
        out.push(await brokerCall(b, step));
      }
      return out;
    }
    // in_flight: every call issued before any is awaited.
    const patient = new BrokerQuotas(c, { recordDeadlineMs: clientOpts.request_timeout_ms ?? 60_000 });
    const calls: Promise<number>[] = [];
    for (let i = 0; i < (sc.calls as number); i++) calls.push(brokerCall(patient, sc.call as Args));
    return await Promise.all(calls);
  } finally {
    await c.close();
    await s.stop();
  }
}

const commands: Record<string, (a: Args) => Promise<Result>> = {
  async start_sidecar(a) {
    const s = new Sidecar(`s${++counter}`, mkdtempSync(join(tmpdir(), 'rivven-conformance-')), a);
    sidecars.set(s.name, s);
    await s.start();
    return describe(s);
  },
  async signal(a) {
    await sidecar(a).signal(String(a.signal));
    return {};
  },
  async restart(a) {
    const s = sidecar(a);
    await s.restart();
    return describe(s);
  },
  async advance_clock(a) {
    const s = sidecar(a);
    if (s.clock === null) throw new Error(`${s.name} has a real clock`);
    s.clock.advance(Number(a.ms));
    return { now: s.clock.now() };
  },
  async request(a) {
    const c = await QuotaClient.connect(sidecar(a).clientOptions());
    try {
      return { reply: await c.request(a.body as Record<string, unknown>) };
    } finally {
      await c.close();
    }
  },
  async reference(a) {
    return { answers: await reference(String(a.scenario)) };
  },
  async start_hostile(a) {
    const h = new Hostile(String(a.mode));
    const name = `h${++counter}`;
    hostiles.set(name, h);
    return { hostile: name, host: '127.0.0.1', port: await h.listen() };
  },
  async hostile_stats(a) {
    const h = hostiles.get(String(a.hostile));
    if (h === undefined) throw new Error(`unknown hostile ${String(a.hostile)}`);
    return { bytes_sent: h.bytesSent, closed_by_peer: h.closedByPeer };
  },
  async stop(a) {
    const name = String(a.sidecar ?? a.hostile);
    await sidecars.get(name)?.stop();
    await hostiles.get(name)?.close();
    sidecars.delete(name);
    hostiles.delete(name);
    return {};
  },
  async shutdown() {
    await cleanup();
    return {};
  },
};

async function cleanup(): Promise<void> {
  await Promise.allSettled([...sidecars.values()].map((s) => s.stop()));
  await Promise.allSettled([...hostiles.values()].map((h) => h.close()));
  sidecars.clear();
  hostiles.clear();
}

function main(): void {
  const out = (line: Result) => process.stdout.write(`${JSON.stringify(line)}\n`);
  let chain = Promise.resolve();
  createInterface({ input: process.stdin })
    .on('line', (line) => {
      if (line.trim() === '') return;
      chain = chain.then(async () => {
        let req: Args;
        try {
          req = JSON.parse(line) as Args;
        } catch {
          out({ id: null, ok: false, error: 'not JSON' });
          return;
        }
        const cmd = commands[String(req.cmd)];
        try {
          if (cmd === undefined) throw new Error(`unknown command ${String(req.cmd)}`);
          out({ id: req.id ?? null, ok: true, ...(await cmd(req)) });
        } catch (err) {
          out({ id: req.id ?? null, ok: false, error: (err as Error).message });
        }
        if (req.cmd === 'shutdown') process.exit(0);
      });
    })
    .on('close', () => {
      void chain.then(cleanup).then(() => process.exit(0));
    });
  for (const sig of ['SIGTERM', 'SIGINT'] as const) process.on(sig, () => void cleanup().then(() => process.exit(0)));
  out({ ready: true, format: 1 });
}

if (process.argv[1] !== undefined && import.meta.url === new URL(`file://${process.argv[1]}`).href) main();
