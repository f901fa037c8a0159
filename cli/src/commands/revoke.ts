import { openAuthority } from '../offline-authority.js';
import { parseFlags, required } from '../args.js';
import { checkStore } from './provisioning.js';

/**
 * Revokes every live certificate of a device, directly in the store, then rewrites the data
 * dir's crl.der so a broker reading it acts at once; a running service's next CRL lists them too.
 */
export async function revokeCommand(argv: string[]): Promise<number> {
  const f = parseFlags(argv, { 'data-dir': { type: 'string' }, device: { type: 'string' }, store: { type: 'string' } });
  const device = required(f.device, '--device');
  const dataDir = required(f['data-dir'], '--data-dir');
  const { authority, publishCrl, close } = await openAuthority(dataDir, checkStore(f.store));
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
