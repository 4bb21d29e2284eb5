import { EventEmitter } from 'node:events';
import { RivvenError } from '../protocol/error-codes.js';
import * as alterQuotas from '../protocol/messages/alter-quotas.js';
import type { QuotaAlteration } from '../protocol/messages/alter-quotas.js';
import * as acquireLease from '../protocol/messages/acquire-lease.js';
import * as describeFleet from '../protocol/messages/describe-fleet.js';
import * as describeQuotas from '../protocol/messages/describe-quotas.js';
import type { QuotaEntry } from '../protocol/messages/describe-quotas.js';
import * as describeUsage from '../protocol/messages/describe-usage.js';
import type { BucketUsage } from '../protocol/messages/describe-usage.js';
import * as describeViolations from '../protocol/messages/describe-violations.js';
import * as hello from '../protocol/messages/hello.js';
import type { Message } from '../protocol/messages/message.js';
import * as ping from '../protocol/messages/ping.js';
import { RECORD_CONSUME, RECORD_PRODUCE, RECORD_REQUEST, type RecordResult } from '../protocol/messages/record/index.js';
import * as recordUsage from '../protocol/messages/record/usage.js';
import * as resetUsage from '../protocol/messages/reset-usage.js';
import type { Component } from '../quota/entity.js';
import { Connection, DEFAULT_CLIENT_OPTIONS, type QuotaClientOptions } from './connection.js';
import { type CallKind, GENERIC, Multiplexer, RECORD } from './multiplexer.js';

export { DEFAULT_CLIENT_OPTIONS, type ClientTls, type QuotaClientOptions } from './connection.js';
export type { RecordResult } from '../protocol/messages/record/index.js';
export type { QuotaEntry } from '../protocol/messages/describe-quotas.js';
export type { QuotaAlteration } from '../protocol/messages/alter-quotas.js';
export type { BucketUsage } from '../protocol/messages/describe-usage.js';

/** How one call is made. */
export interface CallOptions {
  /** Overrides requestTimeoutMs for this call (BrokerQuotas passes its record deadline). */
  timeoutMs?: number;
  /**
   * Without a ready connection, reject at once with UNAVAILABLE (and reconnect in the background) instead of
   * waiting for the reconnection. For calls in a broker's request path.
   */
  failFast?: boolean;
}

export interface Principal {
  user?: string | null;
  clientId?: string | null;
}

/** The client's side of a message (protocol/messages/message.ts): its request body and how its reply reads. */
type ClientMessage<P, R> = Pick<Message<unknown, never, P, R>, 'encode' | 'decodeReply'>;

/**
 * A connection to one rivven sidecar, used by brokers (through BrokerQuotas) and by the CLI.
 *
 * Requests are pipelined and matched to replies by correlation id. Calls made in the same tick go out in one
 * write. Each call has a timeout (its own, or requestTimeoutMs), kept by one timer per distinct timeout. An
 * Error reply rejects with a RivvenError carrying the server's code (and `index` for AlterQuotas). At most
 * maxPending calls are in flight. If the connection drops, calls sent on it reject with CONNECTION_CLOSED
 * (they may or may not have been applied), the client reconnects with exponential backoff, and calls made
 * meanwhile wait for it (within their timeout) unless made with failFast. close() rejects whatever is
 * pending and stops reconnecting. Events: 'connect', 'disconnect' (Error), 'error' (Error).
 * The socket's life is connection.ts's; the calls in flight multiplexer.ts's; this is the API over them.
 */
export class QuotaClient extends EventEmitter {
  readonly options: Readonly<QuotaClientOptions>;
  /** Writes made to the socket (each carries every call of one tick). */
  readonly stats: { writes: number };
  private readonly calls: Multiplexer;
  private readonly connection: Connection;
  private closed = false;

  constructor(options: Partial<QuotaClientOptions> = {}) {
    super();
    this.options = Object.freeze({ ...DEFAULT_CLIENT_OPTIONS, ...options });
    const report = (err: Error): void => {
      // An 'error' event without a listener would throw; an embedding broker must not crash for lack of one.
      if (this.listenerCount('error') > 0) this.emit('error', err);
    };
    this.calls = new Multiplexer(`${this.options.host}:${this.options.port}`, report);
    this.stats = this.calls.stats;
    this.connection = new Connection(this.options, this.calls, {
      connect: () => this.emit('connect'),
      disconnect: (err) => this.emit('disconnect', err),
      error: report,
    });
  }

  get address(): string {
    return this.connection.address;
  }

  /** True while a connection is up and has said Hello. */
  get connected(): boolean {
    return this.connection.ready !== null;
  }

  get pendingCount(): number {
    return this.calls.size;
  }

  /**
   * Connects (retrying with backoff up to connectAttempts) and says Hello. On failure nothing is left running:
   * no socket, no timer, no reconnect.
   */
  static async connect(options: Partial<QuotaClientOptions> = {}): Promise<QuotaClient> {
    const client = new QuotaClient(options);
    try {
      await client.connection.ensure(client.options.connectAttempts, true);
    } catch (err) {
      await client.close();
      throw err;
    }
    return client;
  }

  hello(): Promise<hello.HelloOk> {
    return this.ask(hello.message, { clientName: this.options.clientName, token: this.options.token });
  }

  ping(): Promise<void> {
    return this.ask(ping.message, undefined);
  }

  recordProduce(p: Principal & { bytes: number; admit?: boolean }, opts?: CallOptions): Promise<RecordResult> {
    return this.record(RECORD_PRODUCE, p.user, p.clientId, null, p.bytes, p.admit === true, opts);
  }

  recordConsume(
    p: Principal & { consumerGroup?: string | null; bytes: number; admit?: boolean },
    opts?: CallOptions,
  ): Promise<RecordResult> {
    return this.record(RECORD_CONSUME, p.user, p.clientId, p.consumerGroup, p.bytes, p.admit === true, opts);
  }

  recordRequest(p: Principal & { count?: number; admit?: boolean }, opts?: CallOptions): Promise<RecordResult> {
    return this.record(RECORD_REQUEST, p.user, p.clientId, null, p.count ?? 1, p.admit === true, opts);
  }

  /**
   * Usage of a named resource declared in the sidecar's quotas.resources (orders, services started, ...):
   * `amount` defaults to 1. Answered like the Record calls; an undeclared resource rejects with INVALID_REQUEST.
   */
  recordUsage(p: recordUsage.UsageParams, opts?: CallOptions): Promise<RecordResult> {
    return this.ask({ encode: recordUsage.encodeRequest, decodeReply: recordUsage.decodeReplyFor(p.resource) }, p, opts);
  }

  describeQuotas(entities: Component[] = []): Promise<QuotaEntry[]> {
    return this.ask(describeQuotas.message, entities);
  }

  describeUsage(opts: { entities?: Component[]; top?: number; sortBy?: 'utilization' | 'rate' } = {}): Promise<BucketUsage[]> {
    return this.ask(describeUsage.message, opts);
  }

  /** The fleet as the sidecar saw it at its last heartbeat (docs/protocol.md, DescribeFleet). */
  describeFleet(): Promise<describeFleet.FleetDescribed> {
    return this.ask(describeFleet.message, undefined);
  }

  /** The violation log: episode starts and ends, newest last, with a summary of all that match. */
  describeViolations(opts: Parameters<typeof describeViolations.encodeRequest>[0] = {}): Promise<describeViolations.ViolationsReply> {
    return this.ask(describeViolations.message, opts);
  }

  /** Takes an in-flight lease (max_in_flight), or learns how long until one frees up. */
  acquireLease(p: Principal & { ttlMs?: number }, opts?: CallOptions): Promise<acquireLease.LeaseResult> {
    return this.ask(acquireLease.acquireLease, p, opts);
  }

  /** Ends a lease (idempotent). */
  releaseLease(leaseId: string, opts?: CallOptions): Promise<void> {
    return this.ask(acquireLease.releaseLease, leaseId, opts);
  }

  /** Clears the usage and debt of the buckets of the listed principals; resolves with how many were reset. */
  resetUsage(entities: Component[]): Promise<number> {
    return this.ask(resetUsage.message, entities);
  }

  alterQuotas(alterations: QuotaAlteration[], opts: { validateOnly?: boolean } = {}): Promise<number> {
    return this.ask(alterQuotas.message, { alterations, validateOnly: opts.validateOnly });
  }

  /** Sends any request body and resolves with the reply body; rejects on an Error reply. */
  request(body: Record<string, unknown>, opts: CallOptions = {}): Promise<Record<string, unknown>> {
    return this.call(GENERIC, opts, (socket, id) => this.calls.send(socket, id, body)) as Promise<Record<string, unknown>>;
  }

  /** Rejects every pending call with CONNECTION_CLOSED, stops reconnecting, and closes the connection. */
  async close(): Promise<void> {
    this.closed = true;
    this.calls.failPending(new RivvenError('CONNECTION_CLOSED', 'the client was closed'));
    this.calls.clearDeadlines();
    await this.connection.close();
  }

  /** A call of a message of the registry: its body from `params`, its reply read by the message. */
  private ask<P, R>(message: ClientMessage<P, R>, params: P, opts?: CallOptions): Promise<R> {
    return this.request(message.encode(params), opts).then((body) => message.decodeReply(body));
  }

  /** A Record call: encoded straight into the outgoing buffer, and an Ok reply recognised without decoding it. */
  private record(
    kind: number,
    user: string | null | undefined,
    clientId: string | null | undefined,
    group: string | null | undefined,
    amount: number,
    admit: boolean,
    opts: CallOptions = {},
  ): Promise<RecordResult> {
    return this.call(RECORD, opts, (socket, id) =>
      this.calls.sendRecord(socket, id, kind, user, clientId, group, amount, admit),
    ) as Promise<RecordResult>;
  }

  private call(kind: CallKind, opts: CallOptions, write: (socket: NonNullable<Connection['ready']>, id: number) => void): Promise<unknown> {
    if (this.closed) return Promise.reject(new RivvenError('CONNECTION_CLOSED', 'the client is closed'));
    if (this.calls.size >= this.options.maxPending) {
      return Promise.reject(new RivvenError('OVERLOADED', `${this.calls.size} calls are in flight to ${this.address} (maxPending)`));
    }
    const socket = this.connection.ready;
    if (socket === null && opts.failFast) {
      this.connection.reconnectInBackground();
      return Promise.reject(new RivvenError('UNAVAILABLE', `not connected to ${this.address}`));
    }
    const { id, reply } = this.calls.pend(opts.timeoutMs ?? this.options.requestTimeoutMs, kind);
    if (socket !== null) {
      write(socket, id);
    } else {
      this.connection.ensure(Infinity, false).then(
        (s) => write(s, id),
        (err: Error) => this.calls.settle(id, undefined, err),
      );
    }
    return reply;
  }
}
