import { pino, type DestinationStream, type Logger } from 'pino';

export type { DestinationStream, Logger };

/** pino's levels, quietest last; `--log-level` and TLSFLEET_LOG_LEVEL take one of these. */
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/**
 * Fields that may carry a secret, censored wherever they appear: a second line of defence,
 * since bodies (tokens, CSRs) and Authorization headers are never passed to the logger.
 */
export const LOG_REDACT_PATHS: readonly string[] = [
  'authorization',
  '*.authorization',
  'req.headers.authorization',
  'headers.authorization',
  'token',
  '*.token',
  'adminToken',
  'password',
  '*.password',
  'privateKey',
  '*.privateKey',
  'key',
];

/**
 * JSON log lines, one per event, to `destination` (default stdout). `level` defaults to
 * TLSFLEET_LOG_LEVEL, then info.
 */
export function createLogger(name: string, level: string = process.env.TLSFLEET_LOG_LEVEL ?? 'info', destination?: DestinationStream): Logger {
  const options = { name, level, redact: { paths: [...LOG_REDACT_PATHS], censor: '[redacted]' } };
  return destination === undefined ? pino(options) : pino(options, destination);
}
