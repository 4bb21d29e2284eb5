import { escapeUnprintable, hasUnprintable } from '../util/printable.js';

// Characters that carry meaning in how the CLI writes entities (user:alice/client-id:app), and quotes.
const SPECIAL = /[/:"\\]|^\s|\s$/;

/**
 * A principal name as the CLI prints it. A plain name prints as itself. A name that could be mistaken for
 * something else is quoted as a JSON string: one that reads like `<default>`, one holding `/` or `:` (it
 * would look like a compound entity), leading or trailing space, or a control character (escaped, so a name
 * cannot clear the screen or forge a table row).
 */
export function showName(name: string): string {
  if (name === '<default>' || SPECIAL.test(name) || hasUnprintable(name)) return escapeUnprintable(JSON.stringify(name));
  return name;
}

/** Cuts `s` to `max` characters with an ellipsis (full names are in --json). */
export function truncate(s: string, max: number): string {
  return s.length <= max ? s : `${s.slice(0, Math.max(1, max - 1))}…`;
}
