import { InvalidArgumentError, type Command } from 'commander';
import { type Component, displayEntity } from '../quota/entity.js';
import { UsageError } from './exit-codes.js';
import { showName } from './show-name.js';

export interface EntityFlags {
  user?: string;
  userDefault?: boolean;
  clientId?: string;
  clientIdDefault?: boolean;
  consumerGroup?: string;
  consumerGroupDefault?: boolean;
  default?: boolean;
}

/**
 * An option parser that refuses a second value: `--user alice --user bob` is almost always a mistake, and
 * commander would silently keep bob.
 */
export const once =
  (flag: string) =>
  (value: string, previous: string | undefined): string => {
    if (previous !== undefined) throw new InvalidArgumentError(`${flag} was given twice ("${previous}", then "${value}"); give it once`);
    return value;
  };

export function addEntityFlags(cmd: Command): Command {
  return cmd
    .option('--user <user>', 'a user', once('--user'))
    .option('--user-default', 'the <default> user')
    .option('--client-id <id>', 'a client-id', once('--client-id'))
    .option('--client-id-default', 'the <default> client-id')
    .option('--consumer-group <group>', 'a consumer group (consume_bytes_rate only)', once('--consumer-group'))
    .option('--consumer-group-default', 'the <default> consumer group')
    .option('--default', 'the global default');
}

/** The entity the flags name, as wire components; [] when none is named. */
export function entityFromFlags(f: EntityFlags): Component[] {
  const both = (a: unknown, b: unknown, what: string) => {
    if (a !== undefined && b) throw new UsageError(`--${what} and --${what}-default cannot both be given`);
  };
  both(f.user, f.userDefault, 'user');
  both(f.clientId, f.clientIdDefault, 'client-id');
  both(f.consumerGroup, f.consumerGroupDefault, 'consumer-group');
  const out: Component[] = [];
  if (f.user !== undefined || f.userDefault) out.push(['user', f.user ?? null]);
  if (f.clientId !== undefined || f.clientIdDefault) out.push(['client-id', f.clientId ?? null]);
  const group = f.consumerGroup !== undefined || f.consumerGroupDefault;
  if (group && out.length > 0) throw new UsageError('a consumer group cannot be combined with --user or --client-id');
  if (group) out.push(['consumer-group', f.consumerGroup ?? null]);
  if (f.default && out.length > 0) throw new UsageError('--default names the global default alone');
  if (f.default) out.push(['default', null]);
  return out;
}

/** "user:alice/client-id:<default>" for messages and tables; names are shown safely (see showName). */
export const showEntity = (entity: Component[]): string => displayEntity(entity, showName);
