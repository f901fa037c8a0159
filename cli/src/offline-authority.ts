import { authorityFromDataDir, createLogger, crlFilesOf, DataDir, openStore, type Authority } from '@tlsfleet/provisioning';

/**
 * The authority over the store the service uses, for commands that run beside (or without)
 * it: the data dir's SQLite file, or the PostgreSQL database `storeUrl` names (an extension
 * of the stable command line: `--store postgres://...`).
 */
export async function openAuthority(
  dir: string,
  storeUrl?: string,
): Promise<{ authority: Authority; publishCrl: () => Promise<void>; close: () => Promise<void> }> {
  const dataDir = DataDir.open(dir);
  const store = await openStore(storeUrl, dataDir.path('database'));
  const authority = authorityFromDataDir(dataDir, store);
  // Silent: publishCrl rejects on failure and the command reports it; stdout is for results.
  const publisher = crlFilesOf(dataDir, authority, createLogger('tlsfleet', 'silent'));
  return { authority, publishCrl: () => publisher.publish(), close: () => store.close() };
}
