// `rivven-quota/client`: what a broker embeds, and nothing of the server (no prom-client, zod, yaml or pino).
// test/e2e/broker-client.test.ts checks which modules this entry point loads.
export {
  QuotaClient,
  DEFAULT_CLIENT_OPTIONS,
  type QuotaClientOptions,
  type ClientTls,
  type CallOptions,
  type RecordResult,
  type QuotaEntry,
  type QuotaAlteration,
  type Principal,
  type BucketUsage,
} from './quota-client.js';
export { BrokerQuotas, DEFAULT_BROKER_QUOTAS_OPTIONS, DENIED, type BrokerQuotasOptions } from './broker-quotas.js';
export { CircuitBreaker, DEFAULT_BREAKER_OPTIONS, type BreakerOptions, type BreakerState } from '../util/breaker.js';
export { ERROR_CODES, RETRIABLE_CODES, isRetriable, RivvenError, type ErrorCode } from '../protocol/error-codes.js';
export type { QuotaKey, QuotaValue } from '../quota/quota-key.js';
export type { Entity, Component, EntityType } from '../quota/entity.js';
