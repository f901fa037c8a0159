import { authorityFromDataDir, createLogger, CrlPublisher, DataDir, SqliteStore, type Authority } from '@tlsfleet/provisioning';

/** The authority over the data dir's own store, for commands that run beside (or without) the service. */
export function openAuthority(dir: string): { authority: Authority; publishCrl: () => Promise<void>; close: () => Promise<void> } {
  const dataDir = DataDir.open(dir);
  const store = SqliteStore.open(dataDir.path('database'));
  const authority = authorityFromDataDir(dataDir, store);
  // Silent: publishCrl rejects on failure and the command reports it; stdout is for results.
  const publisher = new CrlPublisher({ authority, path: dataDir.path('crl'), logger: createLogger('tlsfleet', 'silent') });
  return { authority, publishCrl: () => publisher.publish(), close: () => store.close() };
}
