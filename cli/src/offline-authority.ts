import { authorityFromDataDir, DataDir, SqliteStore, type Authority } from '@tlsfleet/provisioning';

/** The authority over the data dir's own store, for commands that run beside (or without) the service. */
export function openAuthority(dir: string): { authority: Authority; close: () => Promise<void> } {
  const dataDir = DataDir.open(dir);
  const store = SqliteStore.open(dataDir.path('database'));
  return { authority: authorityFromDataDir(dataDir, store), close: () => store.close() };
}
