// What every request message declares. Each message module exports one `Message` per request type it defines;
// index.ts lists them once, and the dispatcher, the guard's roles, the request stats and the client read that
// list. A handler is written against the small part of the server it uses, declared beside it as an
// interface (the server implements them all), so no message reaches into the server.
import type { FrameWriter } from '../frame-writer.js';
import type { Body } from './fields.js';

/** The roles a request may need (docs/security.md); auth/roles.ts turns them into bits. */
export const ROLES = ['record', 'describe', 'alter'] as const;
export type Role = (typeof ROLES)[number];

/** How a request ended, as the request stats count it: a success, Throttled, Error or Denied. */
export const RESULTS = ['ok', 'throttled', 'error', 'denied'] as const;
export const RESULT_OK = 0;
export const RESULT_THROTTLED = 1;
export const RESULT_ERROR = 2;
export const RESULT_DENIED = 3;

/** Written to the call's FrameWriter now (undefined), or a frame later: I/O, or work done in slices. */
export type Reply = undefined | Promise<Buffer>;

/** Who made a call: the parts of the connection's peer a handler may read or set. */
export interface CallPeer {
  /** The connection's id (leases end with it). */
  readonly id: number;
  readonly remote: string;
  /** The authenticated name, as the audit log records it. */
  readonly principal: string;
  /** Hello's client_name. */
  clientName: string | undefined;
}

/** One request being answered. */
export interface Call {
  /** The request's correlation id, which its reply carries. */
  readonly id: number;
  readonly peer: CallPeer;
  /** Where a reply made now is written. */
  readonly out: FrameWriter;
  /** RESULT_THROTTLED or RESULT_DENIED when the reply says so (set by the handler); RESULT_OK otherwise. */
  result: number;
}

/**
 * One request type, both sides. The server: `decode` turns a body (a msgpack map whose type is this one)
 * into the request or throws a RivvenError; `handle` answers it (a thrown RivvenError becomes an Error reply).
 * The client: `encode` makes the body from the call's parameters; `decodeReply` reads the reply, throwing
 * UNEXPECTED_REPLY for one that is not this request's. `S` is what the handler needs of the server.
 */
export interface Message<Req, S, P, R> {
  readonly type: string;
  /** The role a connection needs to make it; null for Hello and Ping. */
  readonly role: Role | null;
  decode(body: Body): Req;
  handle(req: Req, server: S, call: Call): Reply;
  encode(params: P): Body;
  decodeReply(body: Body): R;
}

/** A frame no larger than the server sends (server.max_reply_bytes), else REPLY_TOO_LARGE. */
export interface ReplyLimit {
  readonly maxReplyBytes: number;
}

/** The server's log, for the admin changes a handler reports. */
export interface ServerLog {
  info(fields: Record<string, unknown>, message: string): void;
}
