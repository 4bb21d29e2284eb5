/**
 * The cost of TLS on the protocol port: the wire load (N=50 connections, P=16 in flight each, RecordRequest)
 * against one sidecar without TLS and one with server.tls, medians of 3 runs each, and the handshake itself:
 * connections set up per second, plain against TLS (each a connect, a Ping and a close). Certificates are made
 * by openssl for the run.
 */
import net from 'node:net';
import tls from 'node:tls';
import { makeCerts } from '../test/helpers/certs.js';
import { loadgen, startSidecar } from '../test/helpers/procs.js';
import { encodeFrame } from '../src/protocol/codec.js';

const median = <T extends { ops_per_sec: number }>(runs: T[]): T =>
  [...runs].sort((a, b) => a.ops_per_sec - b.ops_per_sec)[runs.length >> 1]!;

async function setupsPerSecond(port: number, ca: Buffer | undefined, ms = 2000): Promise<number> {
  const ping = encodeFrame(1, { type: 'Ping' });
  const end = performance.now() + ms;
  let n = 0;
  const one = () =>
    new Promise<void>((resolve, reject) => {
      const s = ca === undefined ? net.connect(port, '127.0.0.1') : tls.connect({ port, host: '127.0.0.1', ca, servername: 'localhost' });
      s.once(ca === undefined ? 'connect' : 'secureConnect', () => s.write(ping));
      s.once('data', () => {
        s.destroy();
        resolve();
      });
      s.once('error', reject);
    });
  // Eight at a time, as a fleet of brokers reconnecting after a sidecar restart would.
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (performance.now() < end) {
        await one();
        n++;
      }
    }),
  );
  return Math.round(n / (ms / 1000));
}

export async function tlsCost() {
  const certs = makeCerts();
  const plain = await startSidecar();
  const secure = await startSidecar({ RIVVEN_SERVER_TLS_CERT: certs.serverCert, RIVVEN_SERVER_TLS_KEY: certs.serverKey });
  try {
    const plainRuns = [];
    const tlsRuns = [];
    for (let i = 0; i < 3; i++) {
      plainRuns.push(await loadgen('rivven', plain.port, 50, 16, 1500, 3000));
      tlsRuns.push(await loadgen('rivven', secure.port, 50, 16, 1500, 3000, { RIVVEN_BENCH_TLS_CA: certs.ca }));
    }
    const p = median(plainRuns);
    const t = median(tlsRuns);
    return {
      p16_plain: { ops_per_sec: p.ops_per_sec, p50_us: p.p50_us, p99_us: p.p99_us },
      p16_tls: { ops_per_sec: t.ops_per_sec, p50_us: t.p50_us, p99_us: t.p99_us },
      tls_over_plain: Math.round((t.ops_per_sec / p.ops_per_sec) * 100) / 100,
      connection_setups_per_sec_plain: await setupsPerSecond(plain.port, undefined),
      connection_setups_per_sec_tls: await setupsPerSecond(secure.port, certs.read(certs.ca)),
    };
  } finally {
    await plain.stop();
    await secure.stop();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) console.log(JSON.stringify(await tlsCost(), null, 1));
