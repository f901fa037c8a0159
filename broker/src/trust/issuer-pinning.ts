import type { X509Certificate } from 'node:crypto';
import { subjectKeyId, type PeerCertificate } from '@tlsfleet/common';

export interface PinnedIssuers {
  /** Subject Key Identifiers (lower-case hex) of the trust bundle's CA certificates. */
  readonly keyIds: ReadonlySet<string>;
  /** Subjects of the bundle's CA certificates without one: nothing they issued is accepted. */
  readonly withoutKeyId: readonly string[];
}

/**
 * The issuers a client certificate may name, from the current trust bundle. TLS alone
 * cannot untrust an intermediate that left the bundle: the client sends it in the
 * handshake and it still chains to the root, which stays.
 */
export function pinnedIssuers(bundle: readonly X509Certificate[]): PinnedIssuers {
  const keyIds = new Set<string>();
  const withoutKeyId: string[] = [];
  for (const cert of bundle) {
    if (!cert.ca) continue;
    const ski = subjectKeyId(cert.raw);
    if (ski) keyIds.add(ski);
    else withoutKeyId.push(cert.subject.replace(/\n/g, ', '));
  }
  return { keyIds, withoutKeyId };
}

/**
 * Whether the leaf's Authority Key Identifier names a CA of the bundle; a leaf without one is
 * refused (docs/reference/files.md: our certificates carry SKI and AKI). The AKI is the issuer the TLS layer
 * verified against: OpenSSL's chain building (X509_check_issued) requires it to equal the
 * issuing certificate's SKI, so a leaf cannot name another CA than the one that signed it.
 */
export function issuedByPinnedIssuer(peer: PeerCertificate, keyIds: ReadonlySet<string>): boolean {
  const aki = peer.authorityKeyId;
  return aki !== undefined && keyIds.has(aki);
}
