import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';

// Every process a benchmark starts goes through here, so that it can stop exactly those
// (by pid, SIGTERM then SIGKILL after a grace) and nothing else, even on Ctrl-C.

const STOP_GRACE_MS = 10_000;

const running = new Set<ChildProcess>();

export interface Tracked {
  readonly child: ChildProcess;
  readonly pid: number;
  /** performance.now() just before the spawn, ms. */
  readonly startedAtMs: number;
  /** Everything the process printed so far, stdout and stderr, capped to the last 64 KiB. */
  output(): string;
  /** Resolves with what `match` makes of the first stdout line it accepts (already printed or yet to come), and when it came (performance.now(), ms). */
  line<T>(what: string, match: (line: string) => T | undefined, timeoutMs: number): Promise<{ value: T; atMs: number }>;
  stop(): Promise<void>;
}

/** Spawns `command args` with piped output; the result's pid is stopped by stopAllProcesses(). */
export function spawnTracked(command: string, args: readonly string[], opts: { cwd?: string } = {}): Tracked {
  const startedAtMs = performance.now();
  const child = spawn(command, args, { cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  if (child.pid === undefined) throw new Error(`could not start ${command}`);
  running.add(child);
  child.once('exit', () => running.delete(child));
  let output = '';
  const lines: { text: string; atMs: number }[] = [];
  const listeners = new Set<(l: { text: string; atMs: number }) => void>();
  let partial = '';
  const keep = (chunk: string) => (output = (output + chunk).slice(-65_536));
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    const atMs = performance.now();
    keep(chunk);
    const parts = (partial + chunk).split('\n');
    partial = parts.pop()!;
    for (const text of parts) {
      const l = { text, atMs };
      if (lines.length < 1000) lines.push(l);
      for (const listener of listeners) listener(l);
    }
  });
  child.stderr!.setEncoding('utf8').on('data', keep);
  const pid = child.pid;
  return {
    child,
    pid,
    startedAtMs,
    output: () => output,
    line(what, match, timeoutMs) {
      for (const l of lines) {
        const value = match(l.text);
        if (value !== undefined) return Promise.resolve({ value, atMs: l.atMs });
      }
      if (child.exitCode !== null || child.signalCode !== null) return Promise.reject(new Error(`${command} exited (${child.exitCode ?? child.signalCode}) before ${what}:\n${output}`));
      return new Promise((resolve, reject) => {
        const done = () => {
          clearTimeout(timer);
          listeners.delete(onLine);
          child.off('exit', onExit);
        };
        const onLine = (l: { text: string; atMs: number }) => {
          const value = match(l.text);
          if (value === undefined) return;
          done();
          resolve({ value, atMs: l.atMs });
        };
        const onExit = (code: number | null) => {
          done();
          reject(new Error(`${command} exited (${code}) before ${what}:\n${output}`));
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`no ${what} within ${timeoutMs} ms:\n${output}`));
        }, timeoutMs);
        listeners.add(onLine);
        child.once('exit', onExit);
      });
    },
    stop: () => stopProcess(child),
  };
}

/** Runs a command to completion within `timeoutMs`; throws with its output when it fails. */
export function runToCompletion(command: string, args: readonly string[], opts: { cwd?: string; timeoutMs: number }): string {
  const r = spawnSync(command, args, { cwd: opts.cwd, encoding: 'utf8', timeout: opts.timeoutMs, maxBuffer: 64 * 1024 * 1024 });
  if (r.error || r.status !== 0) {
    throw new Error(`${command} ${args.join(' ')} failed (${r.error?.message ?? `status ${r.status}`}):\n${r.stderr}${r.stdout}`);
  }
  return r.stdout;
}

/** SIGTERM, then SIGKILL if it has not exited after the grace. */
export async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
  await exited;
  clearTimeout(timer);
}

export async function stopAllProcesses(): Promise<void> {
  await Promise.all([...running].map(stopProcess));
}
