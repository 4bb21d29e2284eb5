import { type Command, InvalidArgumentError } from 'commander';
import type { QuotaAlteration } from '../client/quota-client.js';
import type { Component } from '../quota/entity.js';
import { LIMIT_KEYS, MAX_RESOURCES, resourceNameError, type LimitKey, type ResourceKey } from '../quota/quota-key.js';
import { preview } from '../util/printable.js';
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
  cmd.option('--rate <resource=value>', "a named resource's rate (quotas.resources), repeatable: --rate orders=10/min", pairs('--rate'));
  cmd.option('--burst <resource=value>', "a named resource's burst, repeatable: --burst orders=10", pairs('--burst'));
  return cmd.option('--shadow', 'measure and count these values but never enforce them (roll a new quota out safely)');
}

/** Collects a repeatable `<resource>=<value>` flag as [resource, value] pairs, each resource once. */
const pairs =
  (flag: string) =>
  (text: string, previous: [string, string][] | undefined): [string, string][] => {
    const at = text.indexOf('=');
    if (at < 0)
      throw new InvalidArgumentError(`${flag} takes <resource>=<value>, e.g. ${flag} orders=10${flag === '--rate' ? '/min' : ''}`);
    const name = text.slice(0, at).trim();
    const why = resourceNameError(name);
    if (why !== undefined) throw new InvalidArgumentError(`${flag} ${preview(name)}: ${why}`);
    const list = previous ?? [];
    if (list.some(([n]) => n === name)) throw new InvalidArgumentError(`${flag} ${name} was given twice; give each resource once`);
    if (list.length >= MAX_RESOURCES) throw new InvalidArgumentError(`${flag}: at most ${MAX_RESOURCES} resources`);
    return [...list, [name, text.slice(at + 1).trim()]];
  };

/** The alterations the rate and burst flags ask for (a resource's key is checked against quotas.resources by the server). */
export function limitAlterations(entity: Component[], flags: Record<string, unknown>): QuotaAlteration[] {
  const out: QuotaAlteration[] = [];
  const add = (key: LimitKey | ResourceKey, raw: string, flag: string) => {
    const a: QuotaAlteration = { entity, quota_key: key, quota_value: parseQuotaValue(key, raw, flag) };
    if (flags.shadow === true) a.shadow = true;
    out.push(a);
  };
  for (const { key, flag, prop } of LIMIT_FLAGS) {
    const raw = flags[prop];
    if (typeof raw === 'string') add(key, raw, flag);
  }
  for (const [name, raw] of (flags.rate as [string, string][] | undefined) ?? []) add(`${name}_rate`, raw, `--rate ${name}`);
  for (const [name, raw] of (flags.burst as [string, string][] | undefined) ?? []) add(`${name}_burst`, raw, `--burst ${name}`);
  return out;
}

export const noLimitGiven = (also = ''): UsageError =>
  new UsageError(`give at least one of ${LIMIT_FLAGS.map((f) => f.flag).join(', ')}, --rate, --burst${also}`);
