/** Exit 0 on success, 1 when the server refused or failed, 2 on a usage or configuration error. */
export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;

/** Thrown for a usage error found after commander's own parsing (bad value, bad entity combination). */
export class UsageError extends Error {}
