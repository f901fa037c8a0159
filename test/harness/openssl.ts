import { spawn } from 'node:child_process';
import { once } from 'node:events';

export interface ToolResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a real command-line peer (openssl, curl) with optional standard input. */
export async function tool(cmd: string, args: string[], input?: string | Buffer): Promise<ToolResult> {
  const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  // A peer that exits without reading its input (s_client on a refused handshake) must not crash the run with EPIPE.
  child.stdin.on('error', () => {});
  child.stdin.end(input);
  const [code] = (await once(child, 'close')) as [number | null];
  return { code, stdout, stderr };
}

export const openssl = (args: string[], input?: string | Buffer) => tool('openssl', args, input);
