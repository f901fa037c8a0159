import { openAuthority } from '../offline-authority.js';
import { duration, parseFlags, required } from '../args.js';
import { UsageError } from '../usage-error.js';

export const tokenUsage = 'tlsfleet token --data-dir DIR (--device ID | --service NAME) [--ttl 24h] [--cert-ttl 7d]';

/** Mints a one-time token offline against the store; prints the token alone on stdout. */
export async function tokenCommand(argv: string[]): Promise<number> {
  const f = parseFlags(argv, {
    'data-dir': { type: 'string' },
    device: { type: 'string' },
    service: { type: 'string' },
    ttl: { type: 'string' },
    'cert-ttl': { type: 'string' },
  });
  if ((f.device === undefined) === (f.service === undefined)) throw new UsageError('give exactly one of --device ID or --service NAME');
  const { authority, close } = openAuthority(required(f['data-dir'], '--data-dir'));
  try {
    const { token } = await authority.mintToken({
      subject: (f.device ?? f.service) as string,
      kind: f.device !== undefined ? 'device' : 'service',
      ttlSeconds: duration(f.ttl, '--ttl'),
      certTtlSeconds: duration(f['cert-ttl'], '--cert-ttl'),
      createdBy: `cli:${process.env.USER ?? process.getuid?.() ?? 'unknown'}`,
    });
    process.stdout.write(`${token}\n`);
    return 0;
  } finally {
    await close();
  }
}
