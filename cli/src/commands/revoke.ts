import { openAuthority } from '../offline-authority.js';
import { required } from '../args.js';
import { resolveFlags } from '../config/resolve-flags.js';
import { REVOKE } from '../definitions/offline-commands.js';
import { storeUrlOf } from '../store-url.js';

/**
 * Revokes every live certificate of a device, directly in the store, then rewrites the data
 * dir's crl.der so a broker reading it acts at once; a running service's next CRL lists them too.
 */
export async function revokeCommand(argv: string[]): Promise<number> {
  const f = resolveFlags(REVOKE, argv);
  const device = required(f.device, '--device');
  const dataDir = required(f['data-dir'], '--data-dir');
  const { authority, publishCrl, close } = await openAuthority(dataDir, storeUrlOf(f));
  try {
    const serials = await authority.revoke(device, `cli:${process.env.USER ?? process.getuid?.() ?? 'unknown'}`);
    process.stderr.write(serials.length === 0 ? `${device} had no live certificates\n` : `revoked ${serials.length} certificate(s) of ${device}\n`);
    for (const s of serials) process.stdout.write(`${s}\n`);
    // Published even when nothing was revoked now: it repairs a file an earlier failure left stale.
    try {
      await publishCrl();
    } catch (err) {
      process.stderr.write(`tlsfleet revoke: recorded in the store, but cannot write the CRL file: ${(err as Error).message}\n`);
      return 1;
    }
    return 0;
  } finally {
    await close();
  }
}
