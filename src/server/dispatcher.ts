import { decodeBody, encodeFrame, isPlainMap } from '../protocol/codec.js';
import { RivvenError } from '../protocol/error-codes.js';
import { errorFrame, throttledFrame } from '../protocol/responses.js';
import type { ReplyWriter } from './reply-writer.js';
import * as alterQuotas from '../protocol/messages/alter-quotas.js';
import * as describeQuotas from '../protocol/messages/describe-quotas.js';
import * as describeUsage from '../protocol/messages/describe-usage.js';
import * as hello from '../protocol/messages/hello.js';
import * as recordConsume from '../protocol/messages/record-consume.js';
import * as recordProduce from '../protocol/messages/record-produce.js';
import * as recordRequest from '../protocol/messages/record-request.js';
import type { QuotaManager, Verdict } from '../quota/quota-manager.js';
import type { Logger } from '../observability/logger.js';
import type { QuotaAdmin } from './quota-admin.js';
import {
  RESULT_ERROR,
  RESULT_OK,
  RESULT_THROTTLED,
  requestTypeIndex,
  UNKNOWN_TYPE,
  type RequestStats,
} from '../observability/request-stats.js';

/** What the server knows about the peer of one connection. */
export interface ConnectionContext {
  readonly id: number;
  readonly remote: string;
  /** Authenticated principal; "anonymous" until authentication exists. */
  principal: string;
  clientName: string | undefined;
}

/** Written to the ReplyWriter now (undefined), or a frame later for requests that wait on I/O (AlterQuotas). */
export type Reply = undefined | Promise<Buffer>;

/**
 * Turns one request body into one reply frame. Never throws: every failure becomes an Error reply with its
 * code, so one bad request cannot reach the connection or any other.
 */
export class Dispatcher {
  constructor(
    private readonly manager: QuotaManager,
    private readonly admin: QuotaAdmin,
    private readonly serverVersion: string,
    private readonly logger: Logger,
    private readonly stats: RequestStats,
  ) {}

  // Scratch fields set by dispatch() for the request just handled: the hot path allocates nothing for them.
  private lastType = UNKNOWN_TYPE;
  private lastResult = RESULT_OK;

  handle(correlationId: number, body: Buffer, ctx: ConnectionContext, out: ReplyWriter): Reply {
    const started = performance.now();
    const reply = this.dispatch(correlationId, body, ctx, out);
    const type = this.lastType;
    if (reply === undefined) {
      this.stats.observe(type, this.lastResult, (performance.now() - started) / 1000);
      return undefined;
    }
    return reply.then((frame) => {
      this.stats.observe(type, isErrorFrame(frame) ? RESULT_ERROR : RESULT_OK, (performance.now() - started) / 1000);
      return frame;
    });
  }

  private dispatch(correlationId: number, body: Buffer, ctx: ConnectionContext, out: ReplyWriter): Reply {
    let type = 'invalid';
    this.lastType = UNKNOWN_TYPE;
    this.lastResult = RESULT_OK;
    try {
      const value = decodeBodySafely(body);
      if (!isPlainMap(value)) throw new RivvenError('INVALID_REQUEST', 'the body must be a msgpack map');
      if (typeof value.type !== 'string') throw new RivvenError('INVALID_REQUEST', 'the body must have a string "type"');
      type = value.type;
      this.lastType = requestTypeIndex(type);
      switch (type) {
        case 'RecordProduce': {
          const r = recordProduce.decode(value);
          return this.verdict(out, correlationId, this.manager.recordProduce(r.user, r.clientId, r.bytes, r.admit));
        }
        case 'RecordConsume': {
          const r = recordConsume.decode(value);
          return this.verdict(
            out,
            correlationId,
            this.manager.recordConsume(r.user, r.clientId, r.consumerGroup, r.bytes, r.admit),
          );
        }
        case 'RecordRequest': {
          const r = recordRequest.decode(value);
          return this.verdict(out, correlationId, this.manager.recordRequest(r.user, r.clientId, r.count, r.admit));
        }
        case 'Ping':
          return out.pong(correlationId);
        case 'Hello': {
          const r = hello.decode(value);
          ctx.clientName = r.clientName;
          return out.frame(encodeFrame(correlationId, {
            type: 'HelloOk',
            protocol_version: hello.PROTOCOL_VERSION,
            server_version: this.serverVersion,
          }));
        }
        case 'DescribeQuotas': {
          const r = describeQuotas.decode(value);
          return out.frame(encodeFrame(correlationId, { type: 'QuotasDescribed', entries: this.admin.describe(r.filters) }));
        }
        case 'DescribeUsage': {
          const r = describeUsage.decode(value);
          const buckets = this.manager.usage({ components: r.components, top: r.top, sortBy: r.sortBy }).map((u) => ({
            entity: u.entity,
            quota_type: u.quotaType,
            rate: u.rate,
            limit: u.limit,
            utilization: u.utilization,
            throttled_total: u.throttledTotal,
            last_seen_ms: u.lastSeenMs,
          }));
          return out.frame(encodeFrame(correlationId, { type: 'UsageDescribed', buckets }));
        }
        case 'AlterQuotas': {
          const r = alterQuotas.decode(value);
          return this.admin.alter(r.alterations, r.validateOnly, ctx.principal, ctx.clientName ?? null).then(
            (altered) => {
              if (!r.validateOnly) {
                this.logger.info({ conn: ctx.id, principal: ctx.principal, altered }, 'quotas altered');
              }
              return encodeFrame(correlationId, { type: 'QuotasAltered', altered_count: altered });
            },
            (err: unknown) => this.failure(correlationId, type, err),
          );
        }
        default:
          throw new RivvenError('UNKNOWN_REQUEST_TYPE', `unknown request type "${type}"`);
      }
    } catch (err) {
      return out.frame(this.failure(correlationId, type, err));
    }
  }

  private verdict(out: ReplyWriter, correlationId: number, v: Verdict): undefined {
    if (v.throttleMs === 0) return out.ok(correlationId);
    this.lastResult = RESULT_THROTTLED;
    return out.frame(throttledFrame(correlationId, v.throttleMs, v.quotaType, v.entity, v.recorded));
  }

  private failure(correlationId: number, type: string, err: unknown): Buffer {
    this.lastResult = RESULT_ERROR;
    if (err instanceof RivvenError) return errorFrame(correlationId, err.code, err.message, err.index);
    this.logger.error({ err, type }, 'request failed');
    return errorFrame(correlationId, 'INTERNAL_ERROR', 'internal error; see the server log');
  }
}

// Only AlterQuotas answers asynchronously; it waits on an fsync, so decoding its reply to classify it is free.
const isErrorFrame = (frame: Buffer): boolean => {
  const body = decodeBody(frame.subarray(8));
  return isPlainMap(body) && body.type === 'Error';
};

function decodeBodySafely(body: Buffer): unknown {
  try {
    return decodeBody(body);
  } catch (err) {
    throw new RivvenError('INVALID_REQUEST', `the body is not valid msgpack: ${(err as Error).message}`);
  }
}
