// DescribeViolations { since_ms?: int (epoch ms), entities?: Component[], types?: ViolationType[], limit?: int (1..10000, default 100) }
//   -> ViolationsDescribed { events: ViolationEvent[], summary: { total, by_type: { [type]: int }, top_entities: [{ entity, count }] } }
// Events are episode starts and ends (docs/operations.md, violation log); `summary` covers every event that
// matches, `events` the newest `limit` of them, oldest first.
import { encodeFrame } from '../codec.js';
import { RivvenError } from '../error-codes.js';
import type { Component } from '../../quota/entity.js';
import type { PeriodUnit } from '../../quota/rate-value.js';
import { VIOLATION_TYPES, type ViolationType } from '../../quota/violations.js';
import * as describeUsage from './describe-usage.js';
import { list, uint, type Body } from './fields.js';
import type { Message, ReplyLimit } from './message.js';
import { expectType, listField } from './reply.js';

export { VIOLATION_TYPES, type ViolationType };

/** One event of the violation log: an episode's start, or its end with the totals. */
export interface ViolationEvent {
  /** Wall-clock time, ISO 8601. */
  time: string;
  type: ViolationType;
  /** The bucket, blocked entity, lease group, or (authentication) the remote address. */
  entity: string;
  quota_type: string | null;
  /** The rate of a throttle or shadow violation on a rate per minute, hour or day; absent: "s" (or no rate). */
  period?: Exclude<PeriodUnit, 's'>;
  detail: string;
  /** Violations in the episode so far: 1 at its start, the total at its end. */
  count: number;
  /** The authenticated name of the connection that reported the episode's first violation ("anonymous" on an open server). */
  reported_by: string;
}

export const MAX_LIMIT = 10_000;

export interface DescribeViolations {
  sinceMs: number | undefined;
  components: [string, string | null][];
  types: ViolationType[];
  limit: number;
}

export function decode(body: Body): DescribeViolations {
  const { components } = describeUsage.decode({ entities: body.entities });
  const types = (list(body, 'types', VIOLATION_TYPES.length) ?? []).map((t, index) => {
    if (!(VIOLATION_TYPES as readonly unknown[]).includes(t))
      throw new RivvenError('INVALID_REQUEST', `types must be among ${VIOLATION_TYPES.join(', ')}`, index);
    return t as ViolationType;
  });
  const limit = uint(body, 'limit', 100);
  if (limit < 1 || limit > MAX_LIMIT) throw new RivvenError('INVALID_REQUEST', `limit must be from 1 to ${MAX_LIMIT}`);
  const sinceMs = body.since_ms === undefined || body.since_ms === null ? undefined : uint(body, 'since_ms');
  return { sinceMs, components, types, limit };
}

/**
 * A filter over an event's entity (its display form, `user:alice/client-id:app`) from components; undefined
 * matches all. Set lookups per component of the entity, so its cost does not grow with the number of filters.
 */
export function entityMatcher(components: [string, string | null][]): ((entity: string) => boolean) | undefined {
  if (components.length === 0) return undefined;
  const exact = new Set<string>();
  const anyOfType = new Set<string>();
  for (const [type, name] of components) {
    if (name === null) anyOfType.add(type);
    else exact.add(`${type}:${name}`);
  }
  return (entity) => {
    let start = 0;
    while (start <= entity.length) {
      const slash = entity.indexOf('/', start);
      const end = slash < 0 ? entity.length : slash;
      const part = entity.slice(start, end);
      if (exact.has(part)) return true;
      if (anyOfType.size > 0) {
        const colon = part.indexOf(':');
        if (colon >= 0 && anyOfType.has(part.slice(0, colon))) return true;
      }
      start = end + 1;
    }
    return false;
  };
}

export interface ViolationsReply {
  events: ViolationEvent[];
  summary: { total: number; by_type: Record<string, number>; top_entities: { entity: string; count: number }[] };
}

export const encodeRequest = (opts: { sinceMs?: number; entities?: Component[]; types?: ViolationType[]; limit?: number }): Body => {
  const body: Body = { type: 'DescribeViolations' };
  if (opts.sinceMs !== undefined) body.since_ms = opts.sinceMs;
  if (opts.entities !== undefined) body.entities = opts.entities;
  if (opts.types !== undefined) body.types = opts.types;
  if (opts.limit !== undefined) body.limit = opts.limit;
  return body;
};

export const encodeReply = (r: ViolationsReply): Body => ({ type: 'ViolationsDescribed', events: r.events, summary: r.summary });

export function decodeReply(body: Body): ViolationsReply {
  expectType(body, 'ViolationsDescribed');
  return { events: listField(body, 'events') as ViolationEvent[], summary: body.summary as ViolationsReply['summary'] };
}

/** What DescribeViolations needs of the server. */
export interface DescribeViolationsServer extends ReplyLimit {
  readonly violations: {
    query(q: { sinceMs?: number; types?: ViolationType[]; matches?: (entity: string) => boolean; limit: number }): Promise<ViolationsReply>;
  };
}

export const message: Message<DescribeViolations, DescribeViolationsServer, Parameters<typeof encodeRequest>[0], ViolationsReply> = {
  type: 'DescribeViolations',
  role: 'describe',
  decode,
  handle(r, server, call) {
    const q = { sinceMs: r.sinceMs, types: r.types, matches: entityMatcher(r.components), limit: r.limit };
    return server.violations.query(q).then((result) => {
      const frame = encodeFrame(call.id, encodeReply(result));
      if (frame.length > server.maxReplyBytes)
        throw new RivvenError('REPLY_TOO_LARGE', 'the reply would exceed server.max_reply_bytes; lower limit');
      return frame;
    });
  },
  encode: encodeRequest,
  decodeReply,
};
