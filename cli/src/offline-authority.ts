import { Authority, DataDir, loadCaSigner, SqliteStore } from '@tlsfleet/provisioning';

/** The authority over the data dir's own store, for commands that run beside (or without) the service. */
export function openAuthority(dir: string): { authority: Authority; close: () => Promise<void> } {
  const dataDir = DataDir.open(dir);
  const intermediatePem = dataDir.read('intermediateCert');
  const store = SqliteStore.open(dataDir.path('database'));
  const authority = new Authority({
    store,
    signer: loadCaSigner(intermediatePem, dataDir.readSecret('intermediateKey')),
    trustDomain: dataDir.config.trustDomain,
    intermediatePem,
    caBundlePem: dataDir.read('caBundle'),
  });
  return { authority, close: () => store.close() };
}
