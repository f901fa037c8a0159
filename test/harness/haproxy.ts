import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from './free-port.js';
import { startListeningChild, type ListeningChild } from './listening-child.js';

export interface Haproxy extends ListeningChild {
  /** The frontend's port on 127.0.0.1. */
  readonly port: number;
}

/** A broker behind the balancer: its MQTT port and, to health-check /readyz, its health port. */
export interface HaproxyBackend {
  port: number;
  healthPort?: number;
}

/** The `backend brokers` section: PROXY headers or not, /readyz checks where a health port is given. */
function backendSection(backends: readonly HaproxyBackend[], proxy: 'v1' | 'v2' | 'none'): string[] {
  const send = { v1: ' send-proxy', v2: ' send-proxy-v2', none: '' }[proxy];
  const checked = backends.some((b) => b.healthPort !== undefined);
  return [
    'backend brokers',
    ...(checked
      ? [
          // A draining broker answers /readyz 503: marked down at the first failed check, and
          // its remaining connections cut so their devices reconnect through a healthy one.
          '  option httpchk GET /readyz',
          // Without it a check times out after `inter`: a busy machine would flap the servers.
          '  timeout check 5s',
          '  default-server inter 100ms fall 1 rise 1 on-marked-down shutdown-sessions',
          // A connection sent in the moment between a broker closing its listener and the next
          // check is refused: retry it on another server at once, not three times on that one.
          '  retries 3',
          '  option redispatch 1',
        ]
      : []),
    ...backends.map((b, i) => `  server broker${i + 1} 127.0.0.1:${b.port}${send}${b.healthPort === undefined ? '' : ` check port ${b.healthPort}`}`),
  ];
}

/**
 * Debian's haproxy in `mode tcp` (TCP passthrough, as AWS NLB) in front of `backendPort`
 * (or several `backends`), sending a PROXY header of `proxy` version on every backend
 * connection ('none': plain TCP). Runs in the foreground (-db) as our child, with its
 * config in `dir`.
 */
export async function startHaproxy(
  opts: { dir: string; proxy: 'v1' | 'v2' | 'none'; name?: string } & ({ backendPort: number } | { backends: readonly HaproxyBackend[] }),
): Promise<Haproxy> {
  const port = await freePort();
  const cfg = join(opts.dir, `haproxy-${opts.name ?? opts.proxy}.cfg`);
  const backends = 'backends' in opts ? opts.backends : [{ port: opts.backendPort }];
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
      ...backendSection(backends, opts.proxy),
      '',
    ].join('\n'),
  );
  // Debian installs it in /usr/sbin, which a non-root PATH often lacks.
  const bin = existsSync('/usr/sbin/haproxy') ? '/usr/sbin/haproxy' : 'haproxy';
  return { ...(await startListeningChild('haproxy', bin, ['-f', cfg, '-db'], port)), port };
}
