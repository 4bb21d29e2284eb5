import { decodeBody, encodeFrame, isPlainMap } from '../protocol/codec.js';
import { RivvenError } from '../protocol/error-codes.js';
import { errorFrame, okFrame, pongFrame, throttledFrame } from '../protocol/responses.js';
import * as alterQuotas from '../protocol/messages/alter-quotas.js';
import * as describeQuotas from '../protocol/messages/describe-quotas.js';
import * as hello from '../protocol/messages/hello.js';
import * as recordConsume from '../protocol/messages/record-consume.js';
import * as recordProduce from '../protocol/messages/record-produce.js';
import * as recordRequest from '../protocol/messages/record-request.js';
import type { QuotaManager, Verdict } from '../quota/quota-manager.js';
import type { Logger } from '../observability/logger.js';
import type { QuotaAdmin } from './quota-admin.js';

/** What the server knows about the peer of one connection. */
export interface ConnectionContext {
  readonly id: number;
  readonly remote: string;
  /** Authenticated principal; "anonymous" until authentication exists. */
  principal: string;
  clientName: string | undefined;
}

/** A reply frame now, or later for requests that wait on I/O (AlterQuotas). */
export type Reply = Buffer | Promise<Buffer>;

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
  ) {}

  handle(correlationId: number, body: Buffer, ctx: ConnectionContext): Reply {
    let type = 'invalid';
    try {
      const value = decodeBodySafely(body);
      if (!isPlainMap(value)) throw new RivvenError('INVALID_REQUEST', 'the body must be a msgpack map');
      if (typeof value.type !== 'string') throw new RivvenError('INVALID_REQUEST', 'the body must have a string "type"');
      type = value.type;
      switch (type) {
        case 'RecordProduce': {
          const r = recordProduce.decode(value);
          return this.verdict(correlationId, this.manager.recordProduce(r.user, r.clientId, r.bytes, r.admit));
        }
        case 'RecordConsume': {
          const r = recordConsume.decode(value);
          return this.verdict(
            correlationId,
            this.manager.recordConsume(r.user, r.clientId, r.consumerGroup, r.bytes, r.admit),
          );
        }
        case 'RecordRequest': {
          const r = recordRequest.decode(value);
          return this.verdict(correlationId, this.manager.recordRequest(r.user, r.clientId, r.count, r.admit));
        }
        case 'Ping':
          return pongFrame(correlationId);
        case 'Hello': {
          const r = hello.decode(value);
          ctx.clientName = r.clientName;
          return encodeFrame(correlationId, {
            type: 'HelloOk',
            protocol_version: hello.PROTOCOL_VERSION,
            server_version: this.serverVersion,
          });
        }
        case 'DescribeQuotas': {
          const r = describeQuotas.decode(value);
          return encodeFrame(correlationId, { type: 'QuotasDescribed', entries: this.admin.describe(r.filters) });
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
      return this.failure(correlationId, type, err);
    }
  }

  private verdict(correlationId: number, v: Verdict): Buffer {
    if (v.throttleMs === 0) return okFrame(correlationId);
    return throttledFrame(correlationId, v.throttleMs, v.quotaType, v.entity, v.recorded);
  }

  private failure(correlationId: number, type: string, err: unknown): Buffer {
    if (err instanceof RivvenError) return errorFrame(correlationId, err.code, err.message, err.index);
    this.logger.error({ err, type }, 'request failed');
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
