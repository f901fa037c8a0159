import { openAuthority } from '../offline-authority.js';
import { duration, required } from '../args.js';
import { UsageError } from '../usage-error.js';
import { resolveFlags } from '../config/resolve-flags.js';
import { TOKEN } from '../definitions/offline-commands.js';
import { storeUrlOf } from '../store-url.js';

/** Mints a one-time token offline against the store; prints the token alone on stdout. */
export async function tokenCommand(argv: string[]): Promise<number> {
  const f = resolveFlags(TOKEN, argv);
  if ((f.device === undefined) === (f.service === undefined)) throw new UsageError('give exactly one of --device ID or --service NAME');
  const dataDir = required(f['data-dir'], '--data-dir');
  const ttlSeconds = duration(f.ttl, '--ttl');
  const certTtlSeconds = duration(f['cert-ttl'], '--cert-ttl');
  const { authority, close } = await openAuthority(dataDir, storeUrlOf(f));
  try {
    const { token } = await authority.mintToken({
      subject: (f.device ?? f.service) as string,
      kind: f.device !== undefined ? 'device' : 'service',
      ttlSeconds,
      certTtlSeconds,
      createdBy: `cli:${process.env.USER ?? process.getuid?.() ?? 'unknown'}`,
    });
    process.stdout.write(`${token}\n`);
    return 0;
  } finally {
    await close();
  }
}
