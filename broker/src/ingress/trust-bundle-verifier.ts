import type { X509Certificate } from 'node:crypto';

export type ChainRejection = 'unknown_ca' | 'expired' | 'not_yet_valid';

/** Longest path, leaf and root included; ours is leaf → intermediate → root (nginx `ssl_verify_depth 3`). */
const MAX_PATH_CERTIFICATES = 4;

/**
 * Verifies a certificate that arrived outside a TLS handshake (forwarded by an ingress) the
 * way the handshake would: a signature path from the leaf through issuers taken from the
 * trust bundle only, ending at a self-signed certificate of the bundle, every certificate
 * on it within its validity period, every issuer a CA. Node's checkIssued (OpenSSL's
 * X509_check_issued) also matches names and AKI/SKI and, when the issuer has a keyUsage,
 * requires keyCertSign. `replace` swaps the bundle on reload.
 */
export class TrustBundleVerifier {
  private issuers: readonly X509Certificate[];

  constructor(bundle: readonly X509Certificate[]) {
    this.issuers = bundle.filter((c) => c.ca);
  }

  replace(bundle: readonly X509Certificate[]): void {
    this.issuers = bundle.filter((c) => c.ca);
  }

  /** Undefined when `leaf` chains to the bundle and every certificate on the path is valid at `nowMs`. */
  verify(leaf: X509Certificate, nowMs: number): ChainRejection | undefined {
    const leafValidity = validityAt(leaf, nowMs);
    if (leafValidity) return leafValidity;
    let current = leaf;
    for (let n = 1; n < MAX_PATH_CERTIFICATES; n++) {
      const signers = this.issuers.filter((c) => current.checkIssued(c) && current.verify(c.publicKey));
      // A re-issued CA (same name and key, new validity) may sit beside its expired copy.
      const issuer = signers.find((c) => validityAt(c, nowMs) === undefined);
      if (!issuer) return signers[0] ? validityAt(signers[0], nowMs) : 'unknown_ca';
      if (issuer.checkIssued(issuer) && issuer.verify(issuer.publicKey)) return undefined;
      current = issuer;
    }
    return 'unknown_ca';
  }
}

function validityAt(cert: X509Certificate, nowMs: number): 'expired' | 'not_yet_valid' | undefined {
  if (nowMs < Date.parse(cert.validFrom)) return 'not_yet_valid';
  if (nowMs > Date.parse(cert.validTo)) return 'expired';
  return undefined;
}
