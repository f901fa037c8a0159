import { readFileSync } from 'node:fs';
import { parseDurationSeconds } from '@tlsfleet/common';
import { UsageError } from './usage-error.js';

export function required(value: string | undefined, flag: string): string {
  if (value === undefined || value === '') throw new UsageError(`${flag} is required`);
  return value;
}

export function port(value: string | undefined, flag: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!/^\d+$/.test(value) || n > 65_535) throw new UsageError(`${flag} must be a port number from 0 to 65535, not ${JSON.stringify(value)}`);
  return n;
}

export function positiveInt(value: string | undefined, flag: string, fallback: number, min = 1): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < min) throw new UsageError(`${flag} must be a whole number ≥ ${min}, not ${JSON.stringify(value)}`);
  return n;
}

export function duration(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const s = parseDurationSeconds(value);
  if (s === undefined || s < 1) throw new UsageError(`${flag} takes a duration such as 30s, 10m, 24h or 7d, not ${JSON.stringify(value)}`);
  return s;
}

/** The text of the file a flag names; a missing or unreadable file is a usage error naming the flag. */
export function readInput(path: string, flag: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new UsageError(`${flag} ${path}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`);
  }
}
