import type { ValueCheck } from './command-definition.js';
import { parseDurationMs } from './duration.js';

/** Value checks shared by the command definitions; each names the problem, never the value. */
export const checks = {
  port: ((v) => (/^\d+$/.test(v) && Number(v) <= 65_535 ? undefined : 'must be a port number from 0 to 65535')) as ValueCheck,
  /** A whole number ≥ min. */
  wholeNumber: (min: number): ValueCheck => (v) => (/^\d+$/.test(v) && Number(v) >= min ? undefined : `must be a whole number ≥ ${min}`),
  /** Whole seconds ≥ 1s: `30s`, `10m`, `24h`, `7d`. */
  durationSeconds: ((v) => {
    const ms = parseDurationMs(v);
    return ms !== undefined && ms % 1000 === 0 && ms >= 1000 ? undefined : 'takes a duration such as 30s, 10m, 24h or 7d';
  }) as ValueCheck,
  /** A duration ≥ 1 ms: `500ms`, `5s`, `1m`. */
  durationMs: ((v) => {
    const ms = parseDurationMs(v);
    return ms !== undefined && ms >= 1 ? undefined : 'takes a duration such as 500ms, 5s or 1m';
  }) as ValueCheck,
  oneOf: (words: readonly string[]): ValueCheck => (v) => (words.includes(v) ? undefined : `must be one of ${words.join(', ')}`),
  notEmpty: ((v) => (v === '' ? 'must not be empty' : undefined)) as ValueCheck,
};
