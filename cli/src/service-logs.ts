import { createLogger, LOG_LEVELS, type DestinationStream, type Logger } from '@tlsfleet/provisioning';
import { pino } from 'pino';
import { PinoPretty } from 'pino-pretty';
import { UsageError } from './usage-error.js';

export const LOG_FORMATS = ['json', 'pretty'] as const;

/**
 * Validates the log flags once and returns a factory of named loggers sharing one stdout
 * destination: JSON lines, unless `--log-format pretty` or stdout is a terminal.
 */
export function serviceLogs(flags: { 'log-level'?: string; 'log-format'?: string }): (name: string) => Logger {
  const level = flags['log-level'] ?? process.env.TLSFLEET_LOG_LEVEL ?? 'info';
  const source = flags['log-level'] !== undefined ? '--log-level' : 'TLSFLEET_LOG_LEVEL';
  if (!(LOG_LEVELS as readonly string[]).includes(level)) throw new UsageError(`${source} must be one of ${LOG_LEVELS.join(', ')}, not ${JSON.stringify(level)}`);
  const format = flags['log-format'] ?? (process.stdout.isTTY ? 'pretty' : 'json');
  if (!(LOG_FORMATS as readonly string[]).includes(format)) throw new UsageError(`--log-format must be json or pretty, not ${JSON.stringify(format)}`);
  // One destination for every logger of the process, so lines from two services never
  // interleave mid-line; pretty-printing runs in-process (no transport worker thread).
  const destination: DestinationStream = format === 'pretty' ? PinoPretty({ colorize: process.stdout.isTTY === true, sync: true, destination: 1 }) : pino.destination({ dest: 1, sync: false });
  return (name) => createLogger(name, level, destination);
}
