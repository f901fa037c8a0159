import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { CLI, type CliResult } from './cli.js';

export interface ServiceOutcome extends CliResult {
  /** True when the service came up (printed `ready`); it was then sent SIGTERM at once. */
  becameReady: boolean;
  /** The signal that ended the process, if one did (it did not handle it). */
  signal: NodeJS.Signals | null;
}

/**
 * Runs a long-running `tlsfleet` command to its end: if it prints a line matching `ready`,
 * SIGTERM goes out from the same output callback, with no delay. Resolves on exit with all
 * its output. Serves both for commands expected to refuse to start (a missing refusal shows
 * as `becameReady` instead of hanging the test) and for "stopped right after start-up".
 */
export async function runAndStopWhenReady(args: string[], ready: RegExp): Promise<ServiceOutcome> {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  let becameReady = false;
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
    if (!becameReady && ready.test(stdout)) {
      becameReady = true;
      child.kill('SIGTERM');
    }
  });
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const [code, signal] = (await once(child, 'close')) as [number | null, NodeJS.Signals | null];
  return { pid: child.pid, code, stdout, stderr, becameReady, signal };
}
