// DescribeUsage { entities?: Component[], top?: int (default 100, 1..10000), sort_by?: "utilization" | "rate" }
//   -> UsageDescribed { buckets: [{ entity, user, client_id, consumer_group, quota_type, period?, rate, limit,
//                                   limit_per_period?, used?, utilization, throttled_total, last_seen_ms }] }
// Reads the buckets held: who is using how much of which quota right now, highest first; one row per bucket, so a
// key with several rates has one row per period. `period`, `limit_per_period` and `used` are sent only for a
// period other than "s", so a per-second row is the bytes a client that knows no periods reads (docs/protocol.md).
// A component [type, name] keeps buckets of that user, client-id or consumer group; [type, null] any bucket that has one.
import { RivvenError } from '../error-codes.js';
import { ENTITY_TYPES, type EntityError, parseName } from '../../quota/entity.js';
import type { Component } from '../../quota/entity.js';
import type { RateKey } from '../../quota/quota-key.js';
import type { PeriodUnit } from '../../quota/rate-value.js';
import { componentMatcher, type BucketReport, type UsageQuery } from '../../quota/usage-report.js';
import { forEachSliced } from '../../util/slices.js';
import { ListReplyBuilder } from '../list-reply.js';
import { list, uint, type Body } from './fields.js';
import type { Message, ReplyLimit } from './message.js';
import { expectType, listField } from './reply.js';
import { MAX_FILTER_COMPONENTS } from './describe-quotas.js';

export const DEFAULT_TOP = 100;
export const MAX_TOP = 10_000;

export interface DescribeUsage {
  components: [string, string | null][];
  top: number;
  sortBy: 'utilization' | 'rate';
}

export function decode(body: Body): DescribeUsage {
  const raw = list(body, 'entities', MAX_FILTER_COMPONENTS) ?? [];
  const components = raw.map((c, index): [string, string | null] => {
    if (!Array.isArray(c) || c.length !== 2 || !(ENTITY_TYPES as readonly unknown[]).includes(c[0]) || c[0] === 'default') {
      throw new RivvenError('INVALID_ENTITY', 'each component must be [user | client-id | consumer-group, name | null]', index);
    }
    try {
      return [c[0] as string, c[1] === null ? null : parseName(c[1], c[0] as string)];
    } catch (err) {
      throw new RivvenError('INVALID_ENTITY', (err as EntityError).message, index);
    }
  });
  const top = uint(body, 'top', DEFAULT_TOP);
  if (top < 1 || top > MAX_TOP) throw new RivvenError('INVALID_REQUEST', `top must be from 1 to ${MAX_TOP}`);
  const sortBy = body.sort_by ?? 'utilization';
  if (sortBy !== 'utilization' && sortBy !== 'rate') throw new RivvenError('INVALID_REQUEST', 'sort_by must be "utilization" or "rate"');
  return { components, top, sortBy };
}

/** One bucket held, as the reply carries it. */
export interface BucketUsage {
  entity: string;
  /** The bucket's parts. */
  user?: string | null;
  client_id?: string | null;
  consumer_group?: string | null;
  /** A rate key, or max_in_flight for a row of leases held (rate: the count held). */
  quota_type: RateKey | 'max_in_flight';
  /** The period of the rate this bucket enforces; absent: "s" (a per-second rate, or a row of leases). */
  period?: Exclude<PeriodUnit, 's'>;
  /** Usage recorded in the last quotas.window_ms, per second (whatever the period). */
  rate: number;
  /** The quota per second, as enforced now (a rate A/P: A/P). */
  limit: number;
  /** With `period`: the quota per period as enforced now, A of A/P (limit x the period's seconds). */
  limit_per_period?: number;
  /** With `period`: outstanding usage in units, recorded and not yet drained (room now: capacity - used). */
  used?: number;
  utilization: number;
  throttled_total: number;
  last_seen_ms: number;
}

export const REPLY_TYPE = 'UsageDescribed';
export const REPLY_LIST_FIELD = 'buckets';

export const encodeRequest = (opts: { entities?: Component[]; top?: number; sortBy?: 'utilization' | 'rate' }): Body => {
  const body: Body = { type: 'DescribeUsage', entities: opts.entities ?? [] };
  if (opts.top !== undefined) body.top = opts.top;
  if (opts.sortBy !== undefined) body.sort_by = opts.sortBy;
  return body;
};

export const toWire = (u: BucketReport): BucketUsage =>
  u.period === 's'
    ? {
        entity: u.entity,
        user: u.user,
        client_id: u.clientId,
        consumer_group: u.consumerGroup,
        quota_type: u.quotaType,
        rate: u.rate,
        limit: u.limit,
        utilization: u.utilization,
        throttled_total: u.throttledTotal,
        last_seen_ms: u.lastSeenMs,
      }
    : {
        entity: u.entity,
        user: u.user,
        client_id: u.clientId,
        consumer_group: u.consumerGroup,
        quota_type: u.quotaType,
        period: u.period,
        rate: u.rate,
        limit: u.limit,
        limit_per_period: u.limitPerPeriod,
        used: u.used,
        utilization: u.utilization,
        throttled_total: u.throttledTotal,
        last_seen_ms: u.lastSeenMs,
      };

/** Leases held by a group, as a usage row: rate is the count held, limit its max_in_flight. */
export const leaseRow = (h: LeaseHolder): BucketUsage => ({
  entity: h.entity,
  user: h.user,
  client_id: h.clientId,
  consumer_group: null,
  quota_type: 'max_in_flight',
  rate: h.held,
  limit: h.limit,
  utilization: h.held / h.limit,
  throttled_total: 0,
  last_seen_ms: Date.now(),
});

export function decodeReply(body: Body): BucketUsage[] {
  expectType(body, REPLY_TYPE);
  return listField(body, REPLY_LIST_FIELD) as BucketUsage[];
}

/** What DescribeUsage needs of the server. */
export interface DescribeUsageServer extends ReplyLimit {
  readonly quotas: { usage(query: UsageQuery): Promise<BucketReport[]> };
  /** The lease groups holding leases (LeaseManager). */
  readonly leases: { holders(): Iterable<LeaseHolder> };
}

type LeaseHolder = { entity: string; user: string | null; clientId: string | null; held: number; limit: number };

export const message: Message<DescribeUsage, DescribeUsageServer, Parameters<typeof encodeRequest>[0], BucketUsage[]> = {
  type: 'DescribeUsage',
  role: 'describe',
  decode,
  handle(r, server, call) {
    const reply = new ListReplyBuilder(REPLY_TYPE, REPLY_LIST_FIELD, server.maxReplyBytes);
    return server.quotas.usage({ components: r.components, top: r.top, sortBy: r.sortBy }).then(async (buckets) => {
      await forEachSliced(buckets, (u) => reply.add(toWire(u)));
      // Leases held, as rows of quota_type max_in_flight, filtered as the buckets are.
      const match = componentMatcher(r.components);
      await forEachSliced(server.leases.holders(), (h) => {
        if (match === null || match(false, h.user, h.clientId)) reply.add(leaseRow(h));
      });
      return reply.frame(call.id);
    });
  },
  encode: encodeRequest,
  decodeReply,
};
