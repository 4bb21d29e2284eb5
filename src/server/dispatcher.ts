import { decodeBody, encodeFrame, isPlainMap } from '../protocol/codec.js';
import { RivvenError } from '../protocol/error-codes.js';
import { errorFrame } from '../protocol/responses.js';
import * as recordReply from '../protocol/messages/record-reply.js';
import * as resetUsage from '../protocol/messages/reset-usage.js';
import * as acquireLease from '../protocol/messages/acquire-lease.js';
import * as describeViolations from '../protocol/messages/describe-violations.js';
import * as describeFleet from '../protocol/messages/describe-fleet.js';
import type { ViolationLog } from '../observability/violation-log.js';
import type { LeaseManager } from '../quota/lease-manager.js';
import { ListReplyBuilder } from '../protocol/list-reply.js';
import type { FrameWriter } from '../protocol/frame-writer.js';
import { decodeRecord, fast, RECORD_CONSUME, RECORD_PRODUCE, RECORD_REQUEST } from '../protocol/record-fast-path.js';
import type { Guard, Peer } from '../auth/guard.js';
import { FailureDelay } from '../auth/failure-delay.js';
import { ALL_ROLES } from '../auth/roles.js';
import * as alterQuotas from '../protocol/messages/alter-quotas.js';
import * as describeQuotas from '../protocol/messages/describe-quotas.js';
import * as describeUsage from '../protocol/messages/describe-usage.js';
import * as hello from '../protocol/messages/hello.js';
import { preview } from '../util/printable.js';
import { forEachSliced } from '../util/slices.js';
import { componentMatcher } from '../quota/usage-report.js';
import * as recordConsume from '../protocol/messages/record-consume.js';
import * as recordProduce from '../protocol/messages/record-produce.js';
import * as recordRequest from '../protocol/messages/record-request.js';
import * as recordUsage from '../protocol/messages/record-usage.js';
import type { QuotaManager, Verdict } from '../quota/quota-manager.js';
import type { Logger } from '../observability/logger.js';
import type { QuotaAdmin } from './quota-admin.js';
import type { DispatcherOptions } from './options.js';
import {
  REQUEST_TYPES,
  RESULT_ERROR,
  RESULT_OK,
  RESULT_COUNT,
  RESULT_DENIED,
  RESULT_THROTTLED,
  requestTypeIndex,
  UNKNOWN_TYPE,
  type RequestStats,
} from '../observability/request-stats.js';

export { DEFAULT_DISPATCHER_OPTIONS, type DispatcherOptions } from './options.js';

/** What the server knows about the peer of one connection. */
export type ConnectionContext = Peer;

/** Written to the FrameWriter now (undefined), or a frame later: I/O (AlterQuotas) or work done in slices. */
export type Reply = undefined | Promise<Buffer>;

/**
 * Turns each request into exactly one reply: written straight into the connection's FrameWriter, or a frame
 * promised later (AlterQuotas waits on the store; the large reads and ResetUsage run in slices). Never throws: every failure becomes an Error
 * reply with its code, so one bad request cannot reach the connection or any other. Record requests take the
 * allocation-free fast path first; everything else, and any Record body it declines, goes through msgpackr
 * and the message modules.
 */
export class Dispatcher {
  constructor(
    private readonly manager: QuotaManager,
    private readonly admin: QuotaAdmin,
    private readonly serverVersion: string,
    private readonly logger: Logger,
    private readonly stats: RequestStats,
    private readonly options: DispatcherOptions,
    readonly guard: Guard,
    readonly leases: LeaseManager,
    readonly violations: ViolationLog,
  ) {
    this.failureDelay = new FailureDelay(options.authFailureDelayMs, 10_000, options.authTimeoutMs / 2);
  }

  /** When each source address's next refused Hello may be answered. */
  private readonly failureDelay: FailureDelay;

  /** A connection closed: the leases it took end with it. */
  connectionClosed(connection: number): void {
    this.leases.releaseConnection(connection);
  }

  // Scratch fields set by dispatch() for the request just handled: the hot path allocates nothing for them.
  private lastType = UNKNOWN_TYPE;
  private lastResult = RESULT_OK;
  // The current batch (the requests of one socket read): one clock reading and one timing for all of them.
  private now = 0;
  private batchStarted = 0;
  private batchSize = 0;
  private readonly batchCounts = new Float64Array(REQUEST_TYPES.length * RESULT_COUNT);

  /** Starts a batch: the requests of one read share one clock reading and are timed together. */
  beginBatch(): void {
    this.now = this.manager.clock.now();
    this.batchStarted = performance.now();
    this.batchSize = 0;
  }

  /** Records the batch's requests, each with the batch's average time. */
  endBatch(): void {
    if (this.batchSize === 0) return;
    const each = (performance.now() - this.batchStarted) / 1000 / this.batchSize;
    const counts = this.batchCounts;
    for (let i = 0; i < counts.length; i++) {
      if (counts[i]! > 0) {
        this.stats.observeMany(Math.floor(i / RESULT_COUNT), i % RESULT_COUNT, counts[i]!, each);
        counts[i] = 0;
      }
    }
  }

  /** One request of the current batch, whose body is buf[start, end). */
  handle(correlationId: number, buf: Buffer, start: number, end: number, ctx: ConnectionContext, out: FrameWriter): Reply {
    const reply = this.dispatch(correlationId, buf, start, end, ctx, out);
    const type = this.lastType;
    if (reply === undefined) {
      this.batchCounts[type * RESULT_COUNT + this.lastResult]!++;
      this.batchSize++;
      return undefined;
    }
    // A reply that waits on I/O (AlterQuotas) records its own result and time when it completes.
    return reply;
  }

  private dispatch(correlationId: number, buf: Buffer, start: number, end: number, ctx: ConnectionContext, out: FrameWriter): Reply {
    let type = 'invalid';
    this.lastType = UNKNOWN_TYPE;
    this.lastResult = RESULT_OK;
    this.violations.reporter = ctx.principal;
    try {
      // The three Record requests are read in place when they can be (nearly always); otherwise msgpackr and
      // the message modules decode them into the same fields. Either way they are recorded here, once.
      if (decodeRecord(buf, start, end)) {
        // Without a tokens file every connection holds ALL_ROLES: this one comparison is all auth costs here.
        if (ctx.roles !== ALL_ROLES) this.guard.check(ctx, RECORD_TYPE_NAMES[fast.kind - 1]!);
        return this.record(out, correlationId);
      }
      const value = decodeBodySafely(buf.subarray(start, end));
      if (!isPlainMap(value)) throw new RivvenError('INVALID_REQUEST', 'the body must be a msgpack map');
      if (typeof value.type !== 'string') throw new RivvenError('INVALID_REQUEST', 'the body must have a string "type"');
      type = value.type;
      this.lastType = requestTypeIndex(type);
      if (ctx.roles !== ALL_ROLES) this.guard.check(ctx, type);
      switch (type) {
        case 'RecordProduce': {
          const r = recordProduce.decode(value);
          fast.set(RECORD_PRODUCE, r.user, r.clientId, null, r.bytes, r.admit);
          return this.record(out, correlationId);
        }
        case 'RecordConsume': {
          const r = recordConsume.decode(value);
          fast.set(RECORD_CONSUME, r.user, r.clientId, r.consumerGroup, r.bytes, r.admit);
          return this.record(out, correlationId);
        }
        case 'RecordRequest': {
          const r = recordRequest.decode(value);
          fast.set(RECORD_REQUEST, r.user, r.clientId, null, r.count, r.admit);
          return this.record(out, correlationId);
        }
        case 'RecordUsage':
          return this.usage(out, correlationId, recordUsage.decode(value));
        case 'Ping':
          return out.pong(correlationId);
        case 'Hello': {
          const r = hello.decode(value);
          const wait = r.token === undefined ? 0 : this.failureDelay.queue(sourceAddress(ctx.remote), performance.now());
          if (wait === Number.POSITIVE_INFINITY) {
            // The address's queue is full: the token is never looked at and the Hello never answered. The socket
            // stays unauthenticated until server.auth_timeout_ms closes it (or a newer socket of the same address
            // evicts it): answering at once made refusals free again (6,993 a second from one address).
            this.lastType = HELLO_TYPE;
            this.guard.failures++;
            ctx.closeAfterReply = true;
            return new Promise<Buffer>(() => undefined);
          }
          if (wait > 0) {
            // This address has a refusal pending: the token is checked in its slot, so guesses cost the delay.
            this.lastType = HELLO_TYPE;
            const checked = new Promise<void>((resolve) => setTimeout(resolve, wait).unref()).then(() => {
              this.helloAuth(correlationId, ctx, r.token, false);
              ctx.clientName = r.clientName;
              return encodeFrame(
                correlationId,
                hello.encodeReply({ protocolVersion: hello.PROTOCOL_VERSION, serverVersion: this.serverVersion }),
              );
            });
            return this.later(correlationId, type, checked);
          }
          const refused = this.helloAuth(correlationId, ctx, r.token, true);
          if (refused !== undefined) return refused;
          ctx.clientName = r.clientName;
          return out.frame(
            encodeFrame(correlationId, hello.encodeReply({ protocolVersion: hello.PROTOCOL_VERSION, serverVersion: this.serverVersion })),
          );
        }
        case 'DescribeQuotas': {
          const r = describeQuotas.decode(value);
          const reply = new ListReplyBuilder(describeQuotas.REPLY_TYPE, describeQuotas.REPLY_LIST_FIELD, this.options.maxReplyBytes);
          return this.later(
            correlationId,
            type,
            this.admin.describe(r.filters, (e) => reply.add(e)).then(() => reply.frame(correlationId)),
          );
        }
        case 'DescribeUsage': {
          const r = describeUsage.decode(value);
          const reply = new ListReplyBuilder(describeUsage.REPLY_TYPE, describeUsage.REPLY_LIST_FIELD, this.options.maxReplyBytes);
          const built = this.manager.usage({ components: r.components, top: r.top, sortBy: r.sortBy }).then(async (buckets) => {
            await forEachSliced(buckets, (u) => reply.add(describeUsage.toWire(u)));
            // Leases held, as rows of quota_type max_in_flight, filtered as the buckets are.
            const match = componentMatcher(r.components);
            await forEachSliced(this.leases.holders(), (h) => {
              if (match === null || match(false, h.user, h.clientId)) reply.add(describeUsage.leaseRow(h));
            });
            return reply.frame(correlationId);
          });
          return this.later(correlationId, type, built);
        }
        case 'AcquireLease': {
          const r = acquireLease.decode(value);
          const a = this.leases.acquire(r.user, r.clientId, r.ttlMs, ctx.id);
          if (a.granted) return out.frame(encodeFrame(correlationId, acquireLease.encodeGranted(a.leaseId, a.ttlMs)));
          if ('overloaded' in a) throw new RivvenError('OVERLOADED', leaseOverloaded(a));
          this.lastResult = RESULT_THROTTLED;
          return out.frame(encodeFrame(correlationId, recordReply.encodeThrottled(a.waitMs, 'max_in_flight', a.entity, false)));
        }
        case 'ReleaseLease': {
          this.leases.release(acquireLease.decodeRelease(value));
          return out.ok(correlationId);
        }
        case 'DescribeViolations': {
          const r = describeViolations.decode(value);
          const built = this.violations
            .query({ sinceMs: r.sinceMs, types: r.types, matches: describeViolations.entityMatcher(r.components), limit: r.limit })
            .then((result) => {
              const frame = encodeFrame(correlationId, describeViolations.encodeReply(result));
              if (frame.length > this.options.maxReplyBytes)
                throw new RivvenError('REPLY_TOO_LARGE', 'the reply would exceed server.max_reply_bytes; lower limit');
              return frame;
            });
          return this.later(correlationId, type, built);
        }
        case 'DescribeFleet': {
          const frame = encodeFrame(correlationId, describeFleet.encodeReply(this.options.fleet?.() ?? describeFleet.DISABLED));
          if (frame.length > this.options.maxReplyBytes)
            throw new RivvenError('REPLY_TOO_LARGE', 'the reply would exceed server.max_reply_bytes');
          return out.frame(frame);
        }
        case 'ResetUsage': {
          const r = resetUsage.decode(value);
          // Forgiving usage is an admin change: in audit.log with its principal before it is done.
          const done = this.admin
            .auditReset(r.components, ctx.principal, ctx.clientName ?? null)
            .then(() => this.manager.resetUsage(r.components))
            .then((n) => {
              this.logger.info({ conn: ctx.id, principal: ctx.principal, buckets: n }, 'usage reset');
              return encodeFrame(correlationId, resetUsage.encodeReply(n));
            });
          return this.later(correlationId, type, done);
        }
        case 'AlterQuotas': {
          const r = alterQuotas.decode(value);
          const altered = this.admin.alter(r.alterations, r.validateOnly, ctx.principal, ctx.clientName ?? null).then((n) => {
            if (!r.validateOnly) this.logger.info({ conn: ctx.id, principal: ctx.principal, altered: n }, 'quotas altered');
            return encodeFrame(correlationId, alterQuotas.encodeReply(n));
          });
          return this.later(correlationId, type, altered);
        }
        default:
          throw new RivvenError('UNKNOWN_REQUEST_TYPE', `unknown request type ${preview(type)}`);
      }
    } catch (err) {
      return out.frame(this.failure(correlationId, type, err));
    }
  }

  /**
   * A reply that is ready later (I/O, or work done in slices): its result and time are recorded when it
   * settles, and a failure becomes an Error reply like any other. Never rejects.
   */
  private later(correlationId: number, type: string, work: Promise<Buffer>): Promise<Buffer> {
    const started = performance.now();
    const typeIndex = requestTypeIndex(type);
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

  /**
   * Authenticates a Hello; a failure is counted and logged with the peer's address, never with the token. A
   * refused token is answered only after the address's failure delay (auth.failure_delay_ms), as a reply that
   * settles later: the connection reads nothing more meanwhile, and closes once it is sent.
   */
  private helloAuth(correlationId: number, ctx: ConnectionContext, token: string | undefined, delay: boolean): Reply {
    try {
      this.guard.hello(ctx, token);
      return undefined;
    } catch (err) {
      const code = (err as RivvenError).code;
      const address = sourceAddress(ctx.remote);
      this.logger.warn({ conn: ctx.id, remote: ctx.remote, code }, 'authentication failed');
      // One episode per address, not per port: a client retrying from new ports is one source.
      this.violations.violation('AUTHENTICATION_FAILED', address, null, code);
      // A Hello that already waited for its slot (queue) is refused at once: the wait was its delay.
      if (code !== 'AUTHENTICATION_FAILED' || !delay) throw err;
      const ms = this.failureDelay.delayFor(address, performance.now());
      if (ms <= 0) throw err;
      this.lastType = HELLO_TYPE;
      const refusal = new Promise<Buffer>((_, reject) => setTimeout(() => reject(err), ms).unref());
      return this.later(correlationId, 'Hello', refusal);
    }
  }

  /** Records the Record request held in `fast` and writes its verdict. */
  private record(out: FrameWriter, correlationId: number): undefined {
    const m = this.manager;
    const f = fast;
    if (f.kind === RECORD_PRODUCE) {
      this.lastType = PRODUCE_TYPE;
      return this.verdict(out, correlationId, m.recordProduce(f.user, f.clientId, f.amount, f.admit, this.now));
    }
    if (f.kind === RECORD_CONSUME) {
      this.lastType = CONSUME_TYPE;
      return this.verdict(out, correlationId, m.recordConsume(f.user, f.clientId, f.consumerGroup, f.amount, f.admit, this.now));
    }
    this.lastType = REQUEST_TYPE;
    return this.verdict(out, correlationId, m.recordRequest(f.user, f.clientId, f.amount, f.admit, this.now));
  }

  /** A RecordUsage: a declared resource's usage, answered like the Record requests. */
  private usage(out: FrameWriter, correlationId: number, r: recordUsage.RecordUsage): undefined {
    const resources = this.manager.table.resources;
    const slot = resources.slot(r.resource);
    if (slot < 0) {
      const declared = resources.names.length === 0 ? 'none are declared' : `declared: ${resources.names.join(', ')}`;
      throw new RivvenError('INVALID_REQUEST', `resource ${r.resource} is not in quotas.resources (${declared})`);
    }
    return this.verdict(out, correlationId, this.manager.recordUsage(slot, r.user, r.clientId, r.amount, r.admit, this.now));
  }

  private verdict(out: FrameWriter, correlationId: number, v: Verdict): undefined {
    if (v.denied) {
      this.lastResult = RESULT_DENIED;
      return out.frame(encodeFrame(correlationId, recordReply.encodeDenied(v.entity, v.reason)));
    }
    if (v.throttleMs === 0) return out.ok(correlationId);
    this.lastResult = RESULT_THROTTLED;
    return out.frame(encodeFrame(correlationId, recordReply.encodeThrottled(v.throttleMs, v.quotaType, v.entity, v.recorded, v.period)));
  }

  private failure(correlationId: number, type: string, err: unknown): Buffer {
    this.lastResult = RESULT_ERROR;
    if (err instanceof RivvenError) return errorFrame(correlationId, err.code, err.message, err.index);
    this.logger.error({ err, type }, 'request failed');
    return errorFrame(correlationId, 'INTERNAL_ERROR', 'internal error; see the server log');
  }
}

const PRODUCE_TYPE = requestTypeIndex('RecordProduce');
const HELLO_TYPE = requestTypeIndex('Hello');
const RECORD_TYPE_NAMES = ['RecordProduce', 'RecordConsume', 'RecordRequest'];
const CONSUME_TYPE = requestTypeIndex('RecordConsume');
const REQUEST_TYPE = requestTypeIndex('RecordRequest');

/** The address part of a peer's "address:port" (failures are slowed per source address, whatever its port). */
const sourceAddress = (remote: string): string => remote.replace(/:\d+$/, '');

/** An AcquireLease refused by a server bound, naming the bound (the config key) and what was held. */
function leaseOverloaded(a: { overloaded: string; principal: string; held: number; bound: number }): string {
  return a.overloaded === 'quotas.max_leases'
    ? `the server holds as many leases as it may: ${a.held} of ${a.bound} (quotas.max_leases)`
    : `${a.principal === '' ? 'the anonymous principal' : preview(a.principal)} holds its share of the leases: ${a.held} of ${a.bound} (quotas.max_leases_per_principal)`;
}

function decodeBodySafely(body: Buffer): unknown {
  try {
    return decodeBody(body);
  } catch (err) {
    throw new RivvenError('INVALID_REQUEST', `the body is not valid msgpack: ${(err as Error).message}`);
  }
}
