import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { connect } from 'node:net';

/** A server process a test started, listening on 127.0.0.1. */
export interface ListeningChild {
  readonly child: ChildProcess;
  /** Everything it printed so far. */
  output(): string;
  /** SIGTERM to its pid; resolves once it exited. */
  stop(): Promise<void>;
}

/** One TCP connection attempt; true when it was accepted. */
export function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ port, host: '127.0.0.1' });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/**
 * Spawns a foreground server (haproxy -db, nginx 'daemon off;') and resolves once `port`
 * on 127.0.0.1 accepts a connection: real attempts, bounded by count and by the process's life.
 */
export async function startListeningChild(name: string, bin: string, args: string[], port: number): Promise<ListeningChild> {
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (out += d));
  let exited = false;
  const exit = once(child, 'exit').then(() => (exited = true));
  child.on('error', (err) => (out += `spawn: ${err.message}\n`));
  for (let i = 0; ; i++) {
    if (exited) throw new Error(`${name} exited before listening:\n${out}`);
    if (await accepts(port)) break;
    if (i >= 20_000) {
      child.kill('SIGKILL');
      throw new Error(`${name} did not listen on 127.0.0.1:${port}:\n${out}`);
    }
  }
  return {
    child,
    output: () => out,
    stop: async () => {
      if (!exited && child.pid !== undefined) process.kill(child.pid, 'SIGTERM');
      await exit;
    },
  };
}
