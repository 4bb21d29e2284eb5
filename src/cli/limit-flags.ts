import type { Command } from 'commander';
import type { QuotaAlteration } from '../client/quota-client.js';
import type { Component } from '../quota/entity.js';
import { LIMIT_KEYS, type LimitKey } from '../quota/quota-key.js';
import { once } from './entity-flags.js';
import { UsageError } from './exit-codes.js';
import { parseQuotaValue } from './quota-values.js';

/** Each numeric key, its flag and the commander property the flag lands in. */
export const LIMIT_FLAGS: { key: LimitKey; flag: string; prop: string }[] = LIMIT_KEYS.map((key) => ({
  key,
  flag: `--${key.replaceAll('_', '-')}`,
  prop: key.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase()),
}));

const HELP: Record<LimitKey, string> = {
  produce_bytes_rate: 'bytes produced per s, min, h or d: 10MB, 10MiB/s, 100GB/d, a list 10MB/s,100GB/d, unlimited',
  consume_bytes_rate: 'bytes consumed: the same forms as --produce-bytes-rate',
  request_rate: 'requests: 100 (per second), 0.5, 10/min, 5/h, a list 100/s,10000/d, unlimited',
  produce_bytes_burst: 'bytes a fresh bucket accepts at once (default: rate x window)',
  consume_bytes_burst: 'bytes a fresh consume bucket accepts at once',
  request_burst: 'requests a fresh bucket accepts at once',
  max_in_flight: 'leases (AcquireLease) held at once: concurrent deliveries, requests, services',
};

/** The rate and burst flags, and --shadow, on `quota set` and `tier set`. */
export function addLimitFlags(cmd: Command): Command {
  for (const { key, flag } of LIMIT_FLAGS) cmd.option(`${flag} <value>`, HELP[key], once(flag));
  return cmd.option('--shadow', 'measure and count these values but never enforce them (roll a new quota out safely)');
}

/** The alterations the rate and burst flags ask for. */
export function limitAlterations(entity: Component[], flags: Record<string, unknown>): QuotaAlteration[] {
  const out: QuotaAlteration[] = [];
  for (const { key, flag, prop } of LIMIT_FLAGS) {
    const raw = flags[prop];
    if (typeof raw !== 'string') continue;
    const a: QuotaAlteration = { entity, quota_key: key, quota_value: parseQuotaValue(key, raw, flag) };
    if (flags.shadow === true) a.shadow = true;
    out.push(a);
  }
  return out;
}

export const noLimitGiven = (also = ''): UsageError =>
  new UsageError(`give at least one of ${LIMIT_FLAGS.map((f) => f.flag).join(', ')}${also}`);
