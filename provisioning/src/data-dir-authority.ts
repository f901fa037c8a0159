import { Authority, type AuthorityOptions } from './authority/authority.js';
import { loadCaSigner } from './authority/load-ca-signer.js';
import type { DataDir } from './data-dir.js';
import type { Store } from './storage/store.js';

/** The Authority of a data dir: its intermediate as signer, its trust domain and bundle. */
export function authorityFromDataDir(dataDir: DataDir, store: Store, opts: Pick<AuthorityOptions, 'crlValiditySeconds' | 'now'> = {}): Authority {
  const intermediatePem = dataDir.read('intermediateCert');
  return new Authority({
    ...opts,
    store,
    signer: loadCaSigner(intermediatePem, dataDir.readSecret('intermediateKey')),
    trustDomain: dataDir.config.trustDomain,
    intermediatePem,
    caBundlePem: dataDir.read('caBundle'),
  });
}
