import { preview } from '../util/printable.js';

/**
 * Quota entities: who a configured quota applies to.
 *
 * On the wire an entity is a list of [entity_type, entity_name | null] components; a null name is the
 * <default> entity of that type. Inside the domain a name is a string and '' stands for <default>: wire
 * names are non-empty, so '' can never collide with a real name.
 */

export const ENTITY_TYPES = ['user', 'client-id', 'consumer-group', 'default', 'tier'] as const;
export type EntityType = (typeof ENTITY_TYPES)[number];
export type Component = [EntityType, string | null];
export type Entity = Component[];

export const DEFAULT_NAME = '';
export const MAX_NAME_BYTES = 1024;

export type EntityRef =
  | { kind: 'default' }
  | { kind: 'user'; user: string }
  | { kind: 'client-id'; client: string }
  | { kind: 'user+client-id'; user: string; client: string }
  | { kind: 'consumer-group'; group: string }
  /** A named set of quota values that user and client-id entities are assigned with the `tier` key. */
  | { kind: 'tier'; tier: string };

export class EntityError extends Error {}

/** Validates a name from the wire: null means <default>. Returns the domain form. */
export function parseName(value: unknown, what: string): string {
  if (value === null) return DEFAULT_NAME;
  if (typeof value !== 'string') throw new EntityError(`${what} name must be a string or null`);
  if (value.length === 0) throw new EntityError(`${what} name must not be empty (use null for <default>)`);
  // Checked before anything walks the whole string: a 1 MiB name costs no more than a 1 KiB one.
  if (value.length > MAX_NAME_BYTES || Buffer.byteLength(value, 'utf8') > MAX_NAME_BYTES) {
    throw new EntityError(`${what} name is longer than ${MAX_NAME_BYTES} bytes`);
  }
  // msgpack decoders turn invalid UTF-8 into U+FFFD (or lone surrogates): two different byte strings would
  // become one principal. A replacement character is never part of a real name, so it is refused outright.
  if (!value.isWellFormed() || value.includes('\uFFFD')) {
    throw new EntityError(`${what} name is not valid UTF-8`);
  }
  return value;
}

export function parseEntity(value: unknown): EntityRef {
  if (!Array.isArray(value) || value.length === 0 || value.length > 2) {
    throw new EntityError('entity must be a list of 1 or 2 [entity_type, entity_name] components');
  }
  const parts = new Map<string, string>();
  for (const component of value as unknown[]) {
    if (!Array.isArray(component) || component.length !== 2 || typeof component[0] !== 'string') {
      throw new EntityError('each entity component must be [entity_type, entity_name | null]');
    }
    const type = component[0];
    if (!(ENTITY_TYPES as readonly string[]).includes(type)) {
      throw new EntityError(`unknown entity_type ${preview(type)}`);
    }
    if (parts.has(type)) throw new EntityError(`entity_type "${type}" appears twice`);
    if (type === 'default') {
      if (component[1] !== null) throw new EntityError('the "default" entity takes a null name');
      parts.set(type, DEFAULT_NAME);
    } else if (type === 'tier') {
      if (component[1] === null) throw new EntityError('a tier has a name: there is no <default> tier');
      parts.set(type, parseName(component[1], type));
    } else {
      parts.set(type, parseName(component[1], type));
    }
  }
  const user = parts.get('user');
  const client = parts.get('client-id');
  if (parts.size === 2) {
    if (user === undefined || client === undefined) {
      throw new EntityError('only user and client-id can be combined in one entity');
    }
    return { kind: 'user+client-id', user, client };
  }
  if (user !== undefined) return { kind: 'user', user };
  if (client !== undefined) return { kind: 'client-id', client };
  const group = parts.get('consumer-group');
  if (group !== undefined) return { kind: 'consumer-group', group };
  const tier = parts.get('tier');
  if (tier !== undefined) return { kind: 'tier', tier };
  return { kind: 'default' };
}

const wireName = (name: string): string | null => (name === DEFAULT_NAME ? null : name);

export function entityToWire(ref: EntityRef): Entity {
  switch (ref.kind) {
    case 'default':
      return [['default', null]];
    case 'user':
      return [['user', wireName(ref.user)]];
    case 'client-id':
      return [['client-id', wireName(ref.client)]];
    case 'user+client-id':
      return [
        ['user', wireName(ref.user)],
        ['client-id', wireName(ref.client)],
      ];
    case 'consumer-group':
      return [['consumer-group', wireName(ref.group)]];
    case 'tier':
      return [['tier', ref.tier]];
  }
}

/**
 * The one key of an entity: its wire form as JSON, the same for equal refs (user+client-id in either order, a
 * null or '' <default>). Configured entities, tier members and alterations are matched by it.
 */
export const entityKey = (ref: EntityRef): string => JSON.stringify(entityToWire(ref));

/**
 * The key of one configured value: [entity, quota_key] as JSON, `entity` in its wire form (entityToWire). The
 * stores keep values under it (it is the field of the Redis configs hash: never change its form).
 */
export const valueKey = (entity: Entity, key: string): string => JSON.stringify([entity, key]);

/**
 * The display form of an entity's components: `type:name` joined by "/" ("user:alice/client-id:<default>"),
 * "default" for the global default. `show` renders a name: as it is for logs and the audit log, escaped in the
 * CLI (whose names may hold anything).
 */
export const displayEntity = (entity: readonly Component[], show: (name: string) => string = (name) => name): string =>
  entity.map(([type, name]) => (type === 'default' ? 'default' : `${type}:${name === null ? '<default>' : show(name)}`)).join('/');

/** Human form of a configured entity, for logs, the audit log and error messages. */
export const describeEntity = (ref: EntityRef): string => displayEntity(entityToWire(ref));

/** Display form of a usage bucket (docs/protocol.md, Record calls): used in Throttled.entity and logs. */
export function bucketDisplay(user: string | null, client: string | null): string {
  if (user !== null && client !== null) return `user:${user}/client-id:${client}`;
  if (user !== null) return `user:${user}`;
  if (client !== null) return `client-id:${client}`;
  return 'anonymous';
}
