// ResetUsage { entities: Component[] } -> UsageReset { buckets: int }
// Clears the fill, debt and measured usage of every bucket held for the listed users, client-ids or consumer
// groups ([type, null]: every bucket that has one); their limits stay. Needs the alter role.
import type { Component } from '../../quota/entity.js';
import type { QuotaManager } from '../../quota/quota-manager.js';
import { encodeFrame } from '../codec.js';
import { RivvenError } from '../error-codes.js';
import * as describeUsage from './describe-usage.js';
import type { Body } from './fields.js';
import type { Message, ServerLog } from './message.js';
import { expectType, numberField } from './reply.js';

export interface ResetUsage {
  components: [string, string | null][];
}

export function decode(body: Body): ResetUsage {
  const { components } = describeUsage.decode({ entities: body.entities });
  // An empty list would reset every bucket of the sidecar: that has to be asked for by name.
  if (components.length === 0)
    throw new RivvenError('INVALID_REQUEST', 'entities must list at least one component (["user", null] for every user)');
  return { components };
}

export const encodeRequest = (entities: Component[]): Body => ({ type: 'ResetUsage', entities });
export const encodeReply = (buckets: number): Body => ({ type: 'UsageReset', buckets });

export function decodeReply(body: Body): number {
  expectType(body, 'UsageReset');
  return numberField(body, 'buckets');
}

/** What ResetUsage needs of the server. */
export interface ResetUsageServer {
  readonly admin: { auditReset(components: [string, string | null][], principal: string, client: string | null): Promise<void> };
  readonly quotas: Pick<QuotaManager, 'resetUsage'>;
  readonly log: ServerLog;
}

export const message: Message<ResetUsage, ResetUsageServer, Component[], number> = {
  type: 'ResetUsage',
  role: 'alter',
  decode,
  handle(r, server, call) {
    const peer = call.peer;
    // Forgiving usage is an admin change: in audit.log with its principal before it is done.
    return server.admin
      .auditReset(r.components, peer.principal, peer.clientName ?? null)
      .then(() => server.quotas.resetUsage(r.components))
      .then((n) => {
        server.log.info({ conn: peer.id, principal: peer.principal, buckets: n }, 'usage reset');
        return encodeFrame(call.id, encodeReply(n));
      });
  },
  encode: encodeRequest,
  decodeReply,
};
