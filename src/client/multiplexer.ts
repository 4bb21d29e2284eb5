import type net from 'node:net';
import { decodeBody, encodeFrame, isPlainMap } from '../protocol/codec.js';
import { RivvenError } from '../protocol/error-codes.js';
import { FrameWriter } from '../protocol/frame-writer.js';
import * as error from '../protocol/messages/error.js';
import { decodeReply as decodeRecordReply, OK_RESULT, writeRecord } from '../protocol/messages/record/index.js';
import { OK_BODY } from '../protocol/responses.js';
import { DeadlineQueue } from './deadline-queue.js';

/** What a pending call resolves with: the reply body, or (Record calls) a RecordResult. */
export const GENERIC = 0;
export const RECORD = 1;
export type CallKind = typeof GENERIC | typeof RECORD;

interface Pending {
  resolve: (value: unknown) => void;
  kind: CallKind;
  reject: (err: Error) => void;
  /** The socket the request was written to; null while it waits for a connection. */
  socket: net.Socket | null;
}

/**
 * The calls in flight to one sidecar: each gets a correlation id and a deadline (one timer per distinct
 * timeout), its frame goes into the batch this tick writes (calls of one tick share one write), and its reply
 * settles it by id. An Error reply rejects with a RivvenError carrying the server's code; a reply on id 0 is
 * a connection-level error that fails every call sent on that socket.
 */
export class Multiplexer {
  /** Writes made to the socket (each carries every call of one tick). */
  readonly stats = { writes: 0 };
  private readonly pending = new Map<number, Pending>();
  private readonly deadlines = new Map<number, DeadlineQueue>();
  private readonly out = new FrameWriter();
  private outSocket: net.Socket | null = null;
  private nextId = 1;

  constructor(
    private readonly address: string,
    /** An error no call is waiting for (an undecodable reply). */
    private readonly report: (err: Error) => void,
  ) {}

  get size(): number {
    return this.pending.size;
  }

  /** A fresh correlation id and the promise its reply settles; it rejects with TIMEOUT after timeoutMs. */
  pend(timeoutMs: number, kind: CallKind = GENERIC): { id: number; reply: Promise<Record<string, unknown>> } {
    let id = this.nextId;
    // 0 is reserved for connection errors; skip ids still in flight after a wrap-around.
    while (id === 0 || this.pending.has(id)) id = id >= 0xffffffff ? 1 : id + 1;
    this.nextId = id >= 0xffffffff ? 1 : id + 1;
    const reply = new Promise<Record<string, unknown>>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, socket: null, kind });
    });
    this.deadlineQueue(timeoutMs).add(id);
    return { id, reply };
  }

  /** Queues the frame for the write this tick makes. */
  send(socket: net.Socket, id: number, body: Record<string, unknown>): void {
    if (this.bind(socket, id)) this.out.frame(encodeFrame(id, withoutAbsent(body)));
  }

  /** A Record call: encoded straight into the outgoing buffer (messages/record/write.ts). */
  sendRecord(
    socket: net.Socket,
    id: number,
    kind: number,
    user: string | null | undefined,
    clientId: string | null | undefined,
    group: string | null | undefined,
    amount: number,
    admit: boolean,
  ): void {
    if (this.bind(socket, id)) writeRecord(this.out, id, kind, user, clientId, group, amount, admit);
  }

  /**
   * Ties a pending call to the socket its frame is about to be written for, and makes sure that socket's batch
   * is flushed this tick. False when the call has already timed out (nothing to write).
   */
  private bind(socket: net.Socket, id: number): boolean {
    const p = this.pending.get(id);
    if (p === undefined) return false;
    p.socket = socket;
    if (this.outSocket !== socket) {
      this.flush();
      this.outSocket = socket;
    }
    if (this.out.length === 0) process.nextTick(this.flushNow);
    return true;
  }

  private readonly flushNow = (): void => this.flush();

  private flush(): void {
    const socket = this.outSocket;
    const batch = this.out.take();
    if (batch === null) return;
    if (socket === null || socket.destroyed) return; // its calls fail with CONNECTION_CLOSED as it closes
    this.stats.writes++;
    socket.write(batch);
  }

  private deadlineQueue(timeoutMs: number): DeadlineQueue {
    let q = this.deadlines.get(timeoutMs);
    if (q === undefined) {
      q = new DeadlineQueue(
        timeoutMs,
        (id) => this.pending.has(id),
        (id) => this.settle(id, undefined, new RivvenError('TIMEOUT', `no reply from ${this.address} within ${timeoutMs} ms`)),
      );
      this.deadlines.set(timeoutMs, q);
    }
    return q;
  }

  /** One reply frame's body, read from `socket`. */
  onReply(socket: net.Socket, id: number, raw: Buffer): void {
    const p = this.pending.get(id);
    if (p !== undefined && p.kind === RECORD && raw.equals(OK_BODY)) {
      // The reply to nearly every record call: the same bytes every time, so no decoding and no new object.
      this.settleWith(id, p, OK_RESULT);
      return;
    }
    let body: unknown;
    try {
      body = decodeBody(raw);
    } catch {
      body = undefined;
    }
    if (!isPlainMap(body)) {
      // The call it answers learns at once (not at its timeout) that the server sent what no server should.
      const err = new RivvenError('UNEXPECTED_REPLY', `undecodable reply from ${this.address} (correlation id ${id})`);
      this.report(err);
      this.settle(id, undefined, err);
      return;
    }
    if (id === 0) {
      // The server reports a connection-level error and closes: every call sent on it fails with it; calls
      // still waiting for a connection wait for the next one.
      this.failPending(error.decode(body), socket);
      return;
    }
    if (body.type === 'Error') this.settle(id, undefined, error.decode(body));
    else this.settle(id, body);
  }

  settle(id: number, body: Record<string, unknown> | undefined, err?: Error): void {
    const p = this.pending.get(id);
    if (p === undefined) return; // timed out earlier: the late reply is dropped
    if (err !== undefined) {
      this.forget(id);
      p.reject(err);
    } else {
      let value: unknown = body;
      try {
        if (p.kind === RECORD) value = decodeRecordReply(body!);
      } catch (err) {
        this.forget(id);
        p.reject(err as Error);
        return;
      }
      this.settleWith(id, p, value);
    }
  }

  private settleWith(id: number, p: Pending, value: unknown): void {
    this.forget(id);
    p.resolve(value);
  }

  private forget(id: number): void {
    this.pending.delete(id);
    // Nothing left in flight: no deadline timer may outlive the calls it was for.
    if (this.pending.size === 0) this.clearDeadlines();
  }

  clearDeadlines(): void {
    for (const q of this.deadlines.values()) q.clear();
  }

  /** Fails the calls sent on `socket`, or every call when no socket is named. */
  failPending(err: Error, socket?: net.Socket): void {
    for (const [id, p] of [...this.pending]) if (socket === undefined || p.socket === socket) this.settle(id, undefined, err);
  }
}

/** The body without its undefined fields (msgpack would carry them as an extension type). */
function withoutAbsent(body: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k in body) if (body[k] !== undefined) out[k] = body[k];
  return out;
}
