import { pino, type Logger } from 'pino';
import type { LogLevel } from './options.js';

export { LOG_LEVELS, type LogLevel } from './options.js';
export type { Logger };

/** JSON lines on stdout. Tokens never reach a log line: they are redacted wherever they appear. */
export function createLogger(level: LogLevel, destination?: NodeJS.WritableStream): Logger {
  return pino(
    {
      level,
      base: { service: 'rivven' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: ['token', '*.token', 'req.token'], censor: '[redacted]' },
    },
    destination ?? process.stdout,
  );
}

export const silentLogger = (): Logger => pino({ level: 'silent' });
