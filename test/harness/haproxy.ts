import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, writeFileSync } from 'node:fs';
import { connect, createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';

export interface Haproxy {
  readonly child: ChildProcess;
  /** The frontend's port on 127.0.0.1. */
  readonly port: number;
  output(): string;
  /** SIGTERM to its pid; resolves once it exited. */
  stop(): Promise<void>;
}

/** A port that was free a moment ago on 127.0.0.1 (haproxy needs a number in its config). */
async function freePort(): Promise<number> {
  const probe = createServer();
  probe.listen(0, '127.0.0.1');
  await once(probe, 'listening');
  const { port } = probe.address() as AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

/** One TCP connection attempt; true when it was accepted. */
function accepts(port: number): Promise<boolean> {
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
 * Debian's haproxy in `mode tcp` (TCP passthrough, as AWS NLB) in front of `backendPort`,
 * sending a PROXY header of `proxy` version on every backend connection. Runs in the
 * foreground (-db) as our child, with its config in `dir`.
 */
export async function startHaproxy(opts: { dir: string; backendPort: number; proxy: 'v1' | 'v2'; name?: string }): Promise<Haproxy> {
  const port = await freePort();
  const cfg = join(opts.dir, `haproxy-${opts.name ?? opts.proxy}.cfg`);
  writeFileSync(
    cfg,
    [
      'global',
      '  maxconn 256',
      'defaults',
      '  mode tcp',
      '  timeout connect 5s',
      '  timeout client 60s',
      '  timeout server 60s',
      'frontend mqtts',
      `  bind 127.0.0.1:${port}`,
      '  default_backend brokers',
      'backend brokers',
      `  server broker1 127.0.0.1:${opts.backendPort} ${opts.proxy === 'v2' ? 'send-proxy-v2' : 'send-proxy'}`,
      '',
    ].join('\n'),
  );
  // Debian installs it in /usr/sbin, which a non-root PATH often lacks.
  const bin = existsSync('/usr/sbin/haproxy') ? '/usr/sbin/haproxy' : 'haproxy';
  const child = spawn(bin, ['-f', cfg, '-db'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (out += d));
  let exited = false;
  const exit = once(child, 'exit').then(() => (exited = true));
  child.on('error', (err) => (out += `spawn: ${err.message}\n`));
  // Real connection attempts until the frontend accepts: bounded by count and by haproxy's life.
  for (let i = 0; ; i++) {
    if (exited) throw new Error(`haproxy exited before listening:\n${out}`);
    if (await accepts(port)) break;
    if (i >= 20_000) {
      child.kill('SIGKILL');
      throw new Error(`haproxy did not listen on 127.0.0.1:${port}:\n${out}`);
    }
  }
  return {
    child,
    port,
    output: () => out,
    stop: async () => {
      if (!exited && child.pid !== undefined) process.kill(child.pid, 'SIGTERM');
      await exit;
    },
  };
}
