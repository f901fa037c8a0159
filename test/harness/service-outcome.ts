import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { CLI, type CliResult } from './cli.js';

export interface ServiceOutcome extends CliResult {
  /** True when the service came up (printed `ready`); it was then stopped with SIGTERM. */
  becameReady: boolean;
}

/**
 * Starts a long-running `tlsfleet` command expected to refuse to start. Resolves when it
 * exits, with all of its output; if instead it becomes ready, it is stopped and
 * `becameReady` says so, so a missing refusal fails fast instead of hanging the test.
 */
export async function startExpectingRefusal(args: string[], ready: RegExp): Promise<ServiceOutcome> {
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
  const [code] = (await once(child, 'close')) as [number | null];
  return { code, stdout, stderr, becameReady };
}
