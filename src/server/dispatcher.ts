import type { Guard, Peer } from '../auth/guard.js';
import { ALL_ROLES } from '../auth/roles.js';
import type { Logger } from '../observability/logger.js';
import type { DispatcherOptions } from './options.js';
import {
  REQUEST_TYPES,
  RESULT_COUNT,
  RESULT_ERROR,
  RESULT_OK,
  requestTypeIndex,
  type RequestStats,
  UNKNOWN_TYPE,
} from '../observability/request-stats.js';
import type { ViolationLog } from '../observability/violation-log.js';
import { decodeBody, isPlainMap } from '../protocol/codec.js';
import { RivvenError } from '../protocol/error-codes.js';
import type { FrameWriter } from '../protocol/frame-writer.js';
import type { FleetDescribed } from '../protocol/messages/describe-fleet.js';
import { MESSAGES, messageIndex, type Server } from '../protocol/messages/index.js';
import type { Call, Reply } from '../protocol/messages/message.js';
import { answer, RecordCall, RecordReader, recordConsume, recordProduce, recordRequest } from '../protocol/messages/record/index.js';
import { errorFrame } from '../protocol/responses.js';
import type { LeaseManager } from '../quota/lease-manager.js';
import type { QuotaManager } from '../quota/quota-manager.js';
import { preview } from '../util/printable.js';
import { HelloAuth } from './hello-auth.js';
import type { QuotaAdmin } from './quota-admin.js';

export { DEFAULT_DISPATCHER_OPTIONS, type DispatcherOptions } from './options.js';

/** What the server knows about the peer of one connection. */
export type ConnectionContext = Peer;

export type { Reply } from '../protocol/messages/message.js';

/** A call as the server makes it: its peer is the connection's whole Peer. */
interface ServerCall extends Call {
  readonly peer: Peer;
}

/** The Record messages by kind (RECORD_PRODUCE, RECORD_CONSUME, RECORD_REQUEST: 1, 2, 3), and their stats index. */
const RECORD_TYPES = ['', recordProduce.type, recordConsume.type, recordRequest.type];
const RECORD_INDEX = RECORD_TYPES.map(requestTypeIndex);

/**
 * Turns each request into exactly one reply: written straight into the connection's FrameWriter, or a frame
 * promised later (AlterQuotas waits on the store; the large reads and ResetUsage run in slices). Never throws:
 * every failure becomes an Error reply with its code, so one bad request cannot reach the connection or any
 * other. Record requests are read in place first (messages/record/read.ts) into a struct the dispatcher owns;
 * everything else, and any Record body the reader declines, goes through msgpackr and the registry of messages
 * (protocol/messages/index.ts), whose handlers are given this dispatcher as their Server.
 */
export class Dispatcher implements Server {
  constructor(
    readonly quotas: QuotaManager,
    readonly admin: QuotaAdmin,
    readonly version: string,
    readonly log: Logger,
    private readonly stats: RequestStats,
    private readonly options: DispatcherOptions,
    readonly guard: Guard,
    readonly leases: LeaseManager,
    readonly violations: ViolationLog,
  ) {
    this.helloAuth = new HelloAuth(guard, violations, log, options.authFailureDelayMs, options.authTimeoutMs);
  }

  private readonly helloAuth: HelloAuth;
  /** The Record request being answered, read in place by `reader`: reused, so the hot path allocates nothing. */
  private readonly record = new RecordCall();
  private readonly reader = new RecordReader();

  get maxReplyBytes(): number {
    return this.options.maxReplyBytes;
  }

  fleet(): FleetDescribed | undefined {
    return this.options.fleet?.();
  }

  authenticate(call: ServerCall, token: string | undefined): Promise<void> | undefined {
    return this.helloAuth.authenticate(call.peer, token);
  }

  /** A connection closed: the leases it took end with it. */
  connectionClosed(connection: number): void {
    this.leases.releaseConnection(connection);
  }

  // Scratch fields set by dispatch() for the request just handled: the hot path allocates nothing for them.
  private lastType = UNKNOWN_TYPE;
  private lastResult = RESULT_OK;
  // The current batch (the requests of one socket read): one clock reading and one timing for all of them.
  /** The clock reading of the current batch. */
  now = 0;
  private batchStarted = 0;
  private batchSize = 0;
  private readonly batchCounts = new Float64Array(REQUEST_TYPES.length * RESULT_COUNT);
  /** The cells of batchCounts this batch touched, so endBatch visits those, not all of them. */
  private readonly batchCells = new Int32Array(REQUEST_TYPES.length * RESULT_COUNT);
  private batchCellCount = 0;

  /** Starts a batch: the requests of one read share one clock reading and are timed together. */
  beginBatch(): void {
    this.now = this.quotas.clock.now();
    this.batchStarted = performance.now();
    this.batchSize = 0;
  }

  /** Records the batch's requests, each with the batch's average time. */
  endBatch(): void {
    if (this.batchSize === 0) return;
    const each = (performance.now() - this.batchStarted) / 1000 / this.batchSize;
    const counts = this.batchCounts;
    for (let k = 0; k < this.batchCellCount; k++) {
      const i = this.batchCells[k]!;
      this.stats.observeMany(Math.floor(i / RESULT_COUNT), i % RESULT_COUNT, counts[i]!, each);
      counts[i] = 0;
    }
    this.batchCellCount = 0;
  }

  /** One request of the current batch, whose body is buf[start, end). */
  handle(correlationId: number, buf: Buffer, start: number, end: number, ctx: ConnectionContext, out: FrameWriter): Reply {
    const reply = this.dispatch(correlationId, buf, start, end, ctx, out);
    if (reply === undefined) {
      const cell = this.lastType * RESULT_COUNT + this.lastResult;
      if (this.batchCounts[cell]! === 0) this.batchCells[this.batchCellCount++] = cell;
      this.batchCounts[cell]!++;
      this.batchSize++;
    }
    // A reply that comes later records its own result and time when it settles (later()).
    return reply;
  }

  private dispatch(correlationId: number, buf: Buffer, start: number, end: number, peer: Peer, out: FrameWriter): Reply {
    let type = 'invalid';
    this.lastType = UNKNOWN_TYPE;
    this.lastResult = RESULT_OK;
    this.violations.reporter = peer.principal;
    try {
      const r = this.record;
      if (this.reader.read(buf, start, end, r)) {
        // Without a tokens file every connection holds ALL_ROLES: this one comparison is all auth costs here.
        if (peer.roles !== ALL_ROLES) this.guard.check(peer, RECORD_TYPES[r.kind]!);
        this.lastType = RECORD_INDEX[r.kind]!;
        this.lastResult = answer(this.quotas, r, this.now, out, correlationId);
        return undefined;
      }
      const value = decodeBodySafely(buf.subarray(start, end));
      if (!isPlainMap(value)) throw new RivvenError('INVALID_REQUEST', 'the body must be a msgpack map');
      if (typeof value.type !== 'string') throw new RivvenError('INVALID_REQUEST', 'the body must have a string "type"');
      type = value.type;
      const index = messageIndex(type);
      this.lastType = index < 0 ? UNKNOWN_TYPE : index;
      if (peer.roles !== ALL_ROLES) this.guard.check(peer, type);
      if (index < 0) throw new RivvenError('UNKNOWN_REQUEST_TYPE', `unknown request type ${preview(type)}`);
      const message = MESSAGES[index]!;
      const call: ServerCall = { id: correlationId, peer, out, result: RESULT_OK };
      const reply = message.handle(message.decode(value), this, call);
      this.lastResult = call.result;
      return reply === undefined ? undefined : this.later(correlationId, index, type, reply);
    } catch (err) {
      return out.frame(this.failure(correlationId, type, err));
    }
  }

  /**
   * A reply that is ready later (I/O, or work done in slices): its result and time are recorded when it
   * settles, and a failure becomes an Error reply like any other. Never rejects.
   */
  private later(correlationId: number, typeIndex: number, type: string, work: Promise<Buffer>): Promise<Buffer> {
    const started = performance.now();
    return work.then(
      (frame) => {
        this.stats.observe(typeIndex, RESULT_OK, (performance.now() - started) / 1000);
        return frame;
      },
      (err: unknown) => {
        this.stats.observe(typeIndex, RESULT_ERROR, (performance.now() - started) / 1000);
        return this.failure(correlationId, type, err);
      },
    );
  }

  private failure(correlationId: number, type: string, err: unknown): Buffer {
    this.lastResult = RESULT_ERROR;
    if (err instanceof RivvenError) return errorFrame(correlationId, err.code, err.message, err.index);
    this.log.error({ err, type }, 'request failed');
    return errorFrame(correlationId, 'INTERNAL_ERROR', 'internal error; see the server log');
  }
}

function decodeBodySafely(body: Buffer): unknown {
  try {
    return decodeBody(body);
  } catch (err) {
    throw new RivvenError('INVALID_REQUEST', `the body is not valid msgpack: ${(err as Error).message}`);
  }
}
