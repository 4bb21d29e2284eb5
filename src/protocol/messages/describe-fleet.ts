// DescribeFleet {} -> FleetDescribed { enabled, node_id, backend, breaker, live, sync_lag_ms, last_error, sidecars: FleetSidecar[] }
// The fleet as this sidecar saw it at its last heartbeat (docs/operations.md, fleet). Without fleet.enabled:
// enabled false, node_id, backend, breaker and last_error null, live 0, sync_lag_ms -1, sidecars []. Needs the
// describe role.
import type { BreakerState } from '../../util/breaker.js';
import { encodeFrame } from '../codec.js';
import { RivvenError } from '../error-codes.js';
import type { Body } from './fields.js';
import type { Message, ReplyLimit } from './message.js';
import { expectType, listField } from './reply.js';

/** One sidecar as its last heartbeat described it. */
export interface FleetSidecar {
  node_id: string;
  /** Ms since its last heartbeat (as of now, on this sidecar's clock). */
  seen_ms_ago: number;
  /** Ms since its last successful sync, as of that heartbeat (-1 before its first). */
  sync_lag_ms: number;
  breaker: BreakerState;
  buckets: number;
  queued: number;
  config_version: number;
  sync_interval_ms: number;
  /**
   * A digest of the rivven.yaml settings that shape its buckets (quota defaults, window, debt, resolution order,
   * boot tiers, sync interval): sidecars that differ here count the same usage differently.
   */
  settings: string;
  /** Random per process: two sidecars under one node_id show two instances in turn. */
  instance: string;
}

export interface FleetDescribed {
  enabled: boolean;
  /** This sidecar's node_id. */
  node_id: string | null;
  /** Where Redis is, without credentials, and the key prefix. */
  backend: string | null;
  breaker: BreakerState | null;
  /** Sidecars whose heartbeat is recent: the fallback's divisor. */
  live: number;
  sync_lag_ms: number;
  last_error: string | null;
  sidecars: FleetSidecar[];
}

export const DISABLED: Readonly<FleetDescribed> = Object.freeze({
  enabled: false,
  node_id: null,
  backend: null,
  breaker: null,
  live: 0,
  sync_lag_ms: -1,
  last_error: null,
  sidecars: [],
});

export const encodeRequest = (): Body => ({ type: 'DescribeFleet' });
export const encodeReply = (f: FleetDescribed): Body => ({ type: 'FleetDescribed', ...f });

export function decodeReply(body: Body): FleetDescribed {
  expectType(body, 'FleetDescribed');
  listField(body, 'sidecars');
  const { type: _type, ...rest } = body;
  return rest as unknown as FleetDescribed;
}

/** What DescribeFleet needs of the server. */
export interface DescribeFleetServer extends ReplyLimit {
  /** The fleet as this sidecar sees it; undefined without fleet.enabled. */
  fleet(): FleetDescribed | undefined;
}

export const message: Message<Record<string, never>, DescribeFleetServer, void, FleetDescribed> = {
  type: 'DescribeFleet',
  role: 'describe',
  decode: () => ({}),
  handle(_r, server, call) {
    const frame = encodeFrame(call.id, encodeReply(server.fleet() ?? DISABLED));
    if (frame.length > server.maxReplyBytes) throw new RivvenError('REPLY_TOO_LARGE', 'the reply would exceed server.max_reply_bytes');
    return call.out.frame(frame);
  },
  encode: encodeRequest,
  decodeReply,
};
