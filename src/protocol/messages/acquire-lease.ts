// AcquireLease { user?, client_id?, ttl_ms?: int (default 30000, 1..3600000) }
//   -> LeaseGranted { lease_id: string, ttl_ms: int }
//   -> Throttled { throttle_time_ms, quota_type: "max_in_flight", entity, recorded: false }
// ReleaseLease { lease_id: string } -> Ok            (idempotent: an unknown or ended lease is no error)
// A lease ends when released, when ttl_ms passes, or when the connection that took it closes.
import type { LeaseManager } from '../../quota/lease-manager.js';
import { preview } from '../../util/printable.js';
import { encodeFrame } from '../codec.js';
import { RivvenError } from '../error-codes.js';
import { optionalString, principalName, uint, type Body } from './fields.js';
import { type Message, RESULT_THROTTLED } from './message.js';
import { encodeThrottled } from './record/index.js';
import { expectType, numberField, stringField } from './reply.js';

export const MAX_TTL_MS = 3_600_000;
const MAX_LEASE_ID_CHARS = 64;

export interface AcquireLease {
  user: string | null;
  clientId: string | null;
  ttlMs: number | undefined;
}

export function decode(body: Body): AcquireLease {
  const ttlMs = body.ttl_ms === undefined || body.ttl_ms === null ? undefined : uint(body, 'ttl_ms');
  if (ttlMs !== undefined && (ttlMs < 1 || ttlMs > MAX_TTL_MS))
    throw new RivvenError('INVALID_REQUEST', `ttl_ms must be from 1 to ${MAX_TTL_MS}`);
  return { user: principalName(body, 'user'), clientId: principalName(body, 'client_id'), ttlMs };
}

export function decodeRelease(body: Body): string {
  const id = optionalString(body, 'lease_id', MAX_LEASE_ID_CHARS);
  if (id === undefined || id.length === 0) throw new RivvenError('INVALID_REQUEST', 'lease_id must be a non-empty string');
  return id;
}

export const encodeRequest = (p: { user?: string | null; clientId?: string | null; ttlMs?: number }): Body => {
  const body: Body = { type: 'AcquireLease' };
  if (p.user != null) body.user = p.user;
  if (p.clientId != null) body.client_id = p.clientId;
  if (p.ttlMs !== undefined) body.ttl_ms = p.ttlMs;
  return body;
};

export const encodeRelease = (leaseId: string): Body => ({ type: 'ReleaseLease', lease_id: leaseId });
export const encodeGranted = (leaseId: string, ttlMs: number): Body => ({ type: 'LeaseGranted', lease_id: leaseId, ttl_ms: ttlMs });

/** Granted, or refused with the wait until the earliest lease of the group ends. */
export type LeaseResult = { granted: true; leaseId: string; ttlMs: number } | { granted: false; throttleTimeMs: number; entity: string };

export function decodeReply(body: Body): LeaseResult {
  if (body.type === 'Throttled')
    return { granted: false, throttleTimeMs: numberField(body, 'throttle_time_ms'), entity: stringField(body, 'entity') };
  expectType(body, 'LeaseGranted');
  return { granted: true, leaseId: stringField(body, 'lease_id'), ttlMs: numberField(body, 'ttl_ms') };
}

/** What the lease requests need of the server. */
export interface LeaseServer {
  readonly leases: Pick<LeaseManager, 'acquire' | 'release'>;
}

type LeaseParams = { user?: string | null; clientId?: string | null; ttlMs?: number };

export const acquireLease: Message<AcquireLease, LeaseServer, LeaseParams, LeaseResult> = {
  type: 'AcquireLease',
  role: 'record',
  decode,
  handle(r, server, call) {
    const a = server.leases.acquire(r.user, r.clientId, r.ttlMs, call.peer.id);
    if (a.granted) return call.out.frame(encodeFrame(call.id, encodeGranted(a.leaseId, a.ttlMs)));
    if ('overloaded' in a) throw new RivvenError('OVERLOADED', leaseOverloaded(a));
    call.result = RESULT_THROTTLED;
    return call.out.frame(encodeFrame(call.id, encodeThrottled(a.waitMs, 'max_in_flight', a.entity, false)));
  },
  encode: encodeRequest,
  decodeReply,
};

export const releaseLease: Message<string, LeaseServer, string, void> = {
  type: 'ReleaseLease',
  role: 'record',
  decode: decodeRelease,
  handle(leaseId, server, call) {
    server.leases.release(leaseId);
    return call.out.ok(call.id);
  },
  encode: encodeRelease,
  // Ok, whatever became of the lease.
  decodeReply: () => undefined,
};

/** An AcquireLease refused by a server bound, naming the bound (the config key) and what was held. */
function leaseOverloaded(a: { overloaded: string; principal: string; held: number; bound: number }): string {
  return a.overloaded === 'quotas.max_leases'
    ? `the server holds as many leases as it may: ${a.held} of ${a.bound} (quotas.max_leases)`
    : `${a.principal === '' ? 'the anonymous principal' : preview(a.principal)} holds its share of the leases: ${a.held} of ${a.bound} (quotas.max_leases_per_principal)`;
}
