import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** RLIMIT_NOFILE of this process; `Infinity` stands for "unlimited". */
export interface FdLimit {
  readonly soft: number;
  readonly hard: number;
}

/** Descriptors kept back from connections for the store, logs, watched files and the CRL. */
const MIN_RESERVE = 64;
const RESERVE_SHARE = 0.1;

/**
 * Reads this process's open-file limit from `/proc/self/limits` (Linux). Undefined where
 * that file does not exist or cannot be read: callers then keep their configured cap.
 */
export function readFdLimit(limitsText?: string): FdLimit | undefined {
  let text = limitsText;
  if (text === undefined) {
    try {
      text = readFileSync('/proc/self/limits', 'utf8');
    } catch {
      return undefined;
    }
  }
  const line = text.split('\n').find((l) => l.startsWith('Max open files'));
  const m = line?.match(/^Max open files\s+(\S+)\s+(\S+)/);
  if (!m) return undefined;
  const soft = parseLimit(m[1]!);
  const hard = parseLimit(m[2]!);
  return soft === undefined || hard === undefined ? undefined : { soft, hard };
}

/**
 * Raises the soft open-file limit to the hard one, as servers such as nginx and mosquitto
 * do at start. Node already does so while it boots on Linux; this covers a limit lowered
 * since (an embedding process, a wrapper). Node has no setrlimit, so util-linux `prlimit`
 * sets it on this pid; where it is missing or refuses, the limit stays as it was.
 * Returns the limit in force afterwards.
 */
export function raiseFdLimit(): FdLimit | undefined {
  const before = readFdLimit();
  if (!before || before.soft >= before.hard) return before;
  const hard = Number.isFinite(before.hard) ? String(before.hard) : 'unlimited';
  try {
    execFileSync('prlimit', ['--pid', String(process.pid), `--nofile=${hard}:${hard}`], { stdio: 'ignore', timeout: 5_000 });
  } catch {
    return before;
  }
  return readFdLimit() ?? before;
}

/**
 * Raises this process's open-file limit, soft and hard, to at least `want` (children
 * started afterwards inherit it). Raising the hard limit needs root (CAP_SYS_RESOURCE);
 * without it only the soft limit rises, up to the hard one. Returns the limit in force
 * afterwards, which the caller compares with `want` to say what is missing.
 */
export function raiseFdLimitTo(want: number): FdLimit | undefined {
  const before = readFdLimit();
  if (!before || before.soft >= want) return before;
  const hard = Math.max(want, before.hard);
  const fmt = (n: number) => (Number.isFinite(n) ? String(n) : 'unlimited');
  try {
    execFileSync('prlimit', ['--pid', String(process.pid), `--nofile=${fmt(Math.max(want, before.soft))}:${fmt(hard)}`], { stdio: 'ignore', timeout: 5_000 });
  } catch {
    return raiseFdLimit();
  }
  return readFdLimit() ?? before;
}

/**
 * The most connections a server should hold open: the soft limit less a reserve (10 %, at
 * least 64 descriptors), so accepting one more connection never takes the descriptor the
 * store or a log file needs. `fallback` applies where the limit is unknown or unlimited,
 * and a configured cap below the result wins.
 */
export function connectionCapBelow(limit: FdLimit | undefined, fallback: number): number {
  if (!limit || !Number.isFinite(limit.soft)) return fallback;
  const reserve = Math.max(MIN_RESERVE, Math.ceil(limit.soft * RESERVE_SHARE));
  return Math.max(1, Math.min(fallback, limit.soft - reserve));
}

function parseLimit(field: string): number | undefined {
  if (field === 'unlimited') return Infinity;
  const n = Number(field);
  return Number.isInteger(n) && n >= 0 ? n : undefined;
}
