// Every request message, listed once. The dispatcher decodes and answers by this list, the guard takes each
// type's role from it (auth/roles.ts), the request stats count by it (observability/request-stats.ts: the order
// here is the order of rivven_requests_total's series), and the client calls through its entries. Adding a
// message: write its module (message.ts says what it declares), add it here.
import * as acquireLease from './acquire-lease.js';
import * as alterQuotas from './alter-quotas.js';
import * as describeFleet from './describe-fleet.js';
import * as describeQuotas from './describe-quotas.js';
import * as describeUsage from './describe-usage.js';
import * as describeViolations from './describe-violations.js';
import * as hello from './hello.js';
import type { Message } from './message.js';
import * as ping from './ping.js';
import * as record from './record/index.js';
import * as recordUsage from './record/usage.js';
import * as resetUsage from './reset-usage.js';

/** Everything the handlers need of the server, which the server provides. */
export type Server = hello.HelloServer &
  record.RecordServer &
  recordUsage.UsageServer &
  describeQuotas.DescribeQuotasServer &
  describeUsage.DescribeUsageServer &
  alterQuotas.AlterQuotasServer &
  resetUsage.ResetUsageServer &
  acquireLease.LeaseServer &
  describeViolations.DescribeViolationsServer &
  describeFleet.DescribeFleetServer;

/** Any message, as the server sees it. */
export type ServerMessage = Message<unknown, Server, never, unknown>;

export const MESSAGES: readonly ServerMessage[] = [
  hello.message,
  ping.message,
  record.recordProduce,
  record.recordConsume,
  record.recordRequest,
  describeQuotas.message,
  describeUsage.message,
  alterQuotas.message,
  resetUsage.message,
  acquireLease.acquireLease,
  acquireLease.releaseLease,
  describeViolations.message,
  describeFleet.message,
  recordUsage.message,
];

const byType = new Map<string, number>(MESSAGES.map((m, i) => [m.type, i]));

/** A type's position in MESSAGES, or -1 for a type that is none of them. */
export const messageIndex = (type: string): number => byType.get(type) ?? -1;
