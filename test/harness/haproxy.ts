import { once } from 'node:events';
import { existsSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { startListeningChild, type ListeningChild } from './listening-child.js';

export interface Haproxy extends ListeningChild {
  /** The frontend's port on 127.0.0.1. */
  readonly port: number;
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
  return { ...(await startListeningChild('haproxy', bin, ['-f', cfg, '-db'], port)), port };
}
