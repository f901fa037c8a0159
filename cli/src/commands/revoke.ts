import { openAuthority } from '../offline-authority.js';
import { parseFlags, required } from '../args.js';

/** Revokes every live certificate of a device, directly in the store; a running service's next CRL lists them. */
export async function revokeCommand(argv: string[]): Promise<number> {
  const f = parseFlags(argv, { 'data-dir': { type: 'string' }, device: { type: 'string' } });
  const device = required(f.device, '--device');
  const dataDir = required(f['data-dir'], '--data-dir');
  const { authority, close } = openAuthority(dataDir);
  try {
    const serials = await authority.revoke(device, `cli:${process.env.USER ?? process.getuid?.() ?? 'unknown'}`);
    process.stderr.write(serials.length === 0 ? `${device} had no live certificates\n` : `revoked ${serials.length} certificate(s) of ${device}\n`);
    for (const s of serials) process.stdout.write(`${s}\n`);
    return 0;
  } finally {
    await close();
  }
}
