/**
 * Load generator, run in its own process: N connections each keeping P requests in flight, with
 * pre-encoded request frames, against either the rivven protocol or Redis RESP. Prints one JSON line:
 * { ops_per_sec, p50_us, p99_us, replies }.
 *
 *   node --import tsx bench/loadgen.ts <rivven|resp> <port> <connections> <pipeline> <warmup_ms> <measure_ms>
 *
 * With RIVVEN_BENCH_TLS_CA set (a PEM file), the rivven connections use TLS and trust that CA.
 */
import { readFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { pack } from 'msgpackr';

const [proto, portArg, nArg, pArg, warmArg, measureArg] = process.argv.slice(2);
const port = Number(portArg);
const N = Number(nArg);
const P = Number(pArg);
const warmupMs = Number(warmArg);
const measureMs = Number(measureArg);

function rivvenFrame(user: string): Buffer {
  const body = pack({ type: 'RecordRequest', user, client_id: 'bench', count: 1 });
  const head = Buffer.alloc(8);
  head.writeUInt32BE(body.length + 4, 0);
  head.writeUInt32BE(1, 4);
  return Buffer.concat([head, body]);
}
const respFrame = (key: string): Buffer => Buffer.from(`*2\r\n$4\r\nINCR\r\n$${key.length}\r\n${key}\r\n`);

// Latency histogram in microseconds: 1 us bins up to 100 ms.
const bins = new Float64Array(100_001);
let measuring = false;
let replies = 0;

interface Conn {
  socket: net.Socket;
  /** batches[k] = k request frames back to back, so k replies are answered with one write */
  batches: Buffer[];
  sent: Float64Array;
  head: number;
  tail: number;
  /** rivven reply framing: length bytes seen so far, and bytes of the current frame still to come */
  lenBytes: Buffer;
  lenHave: number;
  left: number;
}

function countReplies(c: Conn, chunk: Buffer): number {
  let n = 0;
  if (proto === 'resp') {
    // Each INCR reply is one ":<n>\r\n" line.
    for (let i = 0; i < chunk.length; i++) if (chunk[i] === 0x0a) n++;
    return n;
  }
  let at = 0;
  while (at < chunk.length) {
    if (c.left > 0) {
      const take = Math.min(c.left, chunk.length - at);
      c.left -= take;
      at += take;
      if (c.left === 0) n++;
      continue;
    }
    c.lenBytes[c.lenHave++] = chunk[at++]!;
    if (c.lenHave === 4) {
      c.lenHave = 0;
      c.left = c.lenBytes.readUInt32BE(0); // correlation id + body
    }
  }
  return n;
}

function onData(c: Conn, chunk: Buffer): void {
  const n = countReplies(c, chunk);
  if (n === 0) return;
  const now = performance.now();
  for (let i = 0; i < n; i++) {
    const t0 = c.sent[c.head]!;
    c.head = (c.head + 1) % P;
    if (measuring) {
      const us = Math.min(100_000, Math.round((now - t0) * 1000));
      bins[us]!++;
      replies++;
    }
  }
  for (let i = 0; i < n; i++) {
    c.sent[c.tail] = now;
    c.tail = (c.tail + 1) % P;
  }
  c.socket.write(c.batches[n]!);
}

async function main(): Promise<void> {
  const conns: Conn[] = [];
  for (let i = 0; i < N; i++) {
    const frame = proto === 'resp' ? respFrame(`bench:${i}`) : rivvenFrame(`bench-${i}`);
    const batches = Array.from({ length: P + 1 }, (_, k) => Buffer.concat(new Array<Buffer>(k).fill(frame)));
    const socket = await new Promise<net.Socket>((resolve, reject) => {
      const ca = process.env.RIVVEN_BENCH_TLS_CA;
      const s =
        ca === undefined
          ? net.connect(port, '127.0.0.1', () => resolve(s))
          : tls.connect({ port, host: '127.0.0.1', ca: readFileSync(ca), servername: 'localhost' }, () => resolve(s));
      s.once('error', reject);
    });
    socket.setNoDelay(true);
    const c: Conn = { socket, batches, sent: new Float64Array(P), head: 0, tail: 0, lenBytes: Buffer.alloc(4), lenHave: 0, left: 0 };
    socket.on('data', (chunk: Buffer) => onData(c, chunk));
    conns.push(c);
  }
  const start = performance.now();
  for (const c of conns) {
    for (let i = 0; i < P; i++) c.sent[i] = start;
    c.tail = 0;
    c.socket.write(c.batches[P]!);
  }
  await new Promise((r) => setTimeout(r, warmupMs));
  measuring = true;
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, measureMs));
  measuring = false;
  const elapsed = (performance.now() - t0) / 1000;
  const pct = (q: number): number => {
    let seen = 0;
    const target = q * replies;
    for (let us = 0; us < bins.length; us++) {
      seen += bins[us]!;
      if (seen >= target) return us;
    }
    return bins.length;
  };
  process.stdout.write(`${JSON.stringify({ ops_per_sec: Math.round(replies / elapsed), p50_us: pct(0.5), p99_us: pct(0.99), replies })}\n`);
  for (const c of conns) c.socket.destroy();
}

await main();
