import { Authority, type AuthorityOptions } from './authority/authority.js';
import { loadCaSigner } from './authority/load-ca-signer.js';
import { CrlPublisher } from './crl-publisher.js';
import type { DataDir } from './data-dir.js';
import type { Logger } from './logger.js';
import type { Store } from './storage/store.js';

/**
 * The Authority of a data dir: its intermediate as signer, its trust domain and bundle, and
 * during a rotation overlap the previous intermediate as the signer of its own CRL.
 */
export function authorityFromDataDir(dataDir: DataDir, store: Store, opts: Pick<AuthorityOptions, 'crlValiditySeconds' | 'crlDistributionPoint' | 'now' | 'verifyPossession' | 'approveEnrollment' | 'renewExpiredWithinMs'> = {}): Authority {
  const intermediatePem = dataDir.read('intermediateCert');
  return new Authority({
    ...opts,
    store,
    signer: loadCaSigner(intermediatePem, dataDir.readSecret('intermediateKey')),
    trustDomain: dataDir.config.trustDomain,
    intermediatePem,
    caBundlePem: dataDir.read('caBundle'),
    previousIssuer: previousIssuer(dataDir),
  });
}

function previousIssuer(dataDir: DataDir): AuthorityOptions['previousIssuer'] {
  if (!dataDir.has('previousIntermediateCert')) return undefined;
  const certificatePem = dataDir.read('previousIntermediateCert');
  return { certificatePem, privateKey: loadCaSigner(certificatePem, dataDir.readSecret('previousIntermediateKey')).privateKey };
}

/** The CRL files of a data dir kept current together: `crl.der`, and `previous-crl.der` during an overlap. */
export interface CrlFiles {
  /** Rejects when any file cannot be written. */
  publish(): Promise<void>;
  start(intervalMs?: number): void;
  stop(): Promise<void>;
}

export function crlFilesOf(dataDir: DataDir, authority: Authority, logger: Logger): CrlFiles {
  const publishers = [new CrlPublisher({ authority, path: dataDir.path('crl'), logger })];
  if (dataDir.has('previousIntermediateCert')) {
    const crl = () => authority.previousCrl() ?? Promise.reject(new Error('the authority has no previous intermediate'));
    publishers.push(new CrlPublisher({ authority: { crl }, path: dataDir.path('previousCrl'), logger }));
  }
  return {
    publish: async () => {
      await Promise.all(publishers.map((p) => p.publish()));
    },
    start: (intervalMs) => publishers.forEach((p) => p.start(intervalMs)),
    stop: async () => {
      await Promise.all(publishers.map((p) => p.stop()));
    },
  };
}
