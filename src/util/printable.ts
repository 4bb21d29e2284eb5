/**
 * Text that came from a client, made safe to show: in an error reply, a log line or an operator's terminal.
 * Names may legally hold any valid UTF-8, including control characters; whoever prints one must not let it
 * move the cursor, clear the screen or forge a table row.
 */

// C0 and C1 controls, DEL, line/paragraph separators, and the bidi overrides that reorder what follows them.
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

const escapeOne = (c: string): string => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;

/** True when printing `s` as-is could change what the terminal shows beyond the characters themselves. */
export const hasUnprintable = (s: string): boolean => {
  UNPRINTABLE.lastIndex = 0;
  return UNPRINTABLE.test(s);
};

/** `s` with every unprintable character written as \uXXXX. */
export const escapeUnprintable = (s: string): string => s.replace(UNPRINTABLE, escapeOne);

export const PREVIEW_CHARS = 64;

/**
 * A short, quoted, printable prefix of a client-supplied string for an error message or a log line: never more
 * than PREVIEW_CHARS of what the client sent, and never a control character.
 */
export function preview(value: string): string {
  const head = value.length > PREVIEW_CHARS ? `${value.slice(0, PREVIEW_CHARS)}...` : value;
  return escapeUnprintable(JSON.stringify(head));
}
