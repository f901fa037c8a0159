import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * JSON logs on stdout. Bodies are never logged (they carry tokens and CSRs); the
 * redaction is a second line of defence for headers that carry secrets.
 */
export function createLogger(name: string, level = process.env.TLSFLEET_LOG_LEVEL ?? 'info'): Logger {
  return pino({
    name,
    level,
    redact: { paths: ['req.headers.authorization', 'headers.authorization', 'token', '*.token', 'privateKey', 'key'], censor: '[redacted]' },
  });
}
