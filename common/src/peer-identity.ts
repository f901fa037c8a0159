import type { X509Certificate } from 'node:crypto';
import { parseSpiffeUri, type Identity } from './identity.js';
import { normalizeSerialHex } from './serial.js';

/** id-kp-clientAuth (RFC 5280 §4.2.1.12). */
export const CLIENT_AUTH_OID = '1.3.6.1.5.5.7.3.2';

export type PeerRejection = 'no_client_auth' | 'is_ca' | 'uri_san_count' | 'bad_identity';

export interface PeerCertificate {
  readonly identity: Identity;
  /** Canonical serial (normalizeSerialHex). */
  readonly serial: string;
  readonly notAfterMs: number;
  readonly spkiDer: Buffer;
}

/**
 * The identity of a client certificate whose chain the TLS layer has already verified.
 * TLS accepts leaves without an EKU and X.509 v1 leaves, so the profile is checked here:
 * clientAuth EKU (which a v1 certificate cannot carry), not a CA, exactly one URI SAN and
 * it is a spiffe id in our trust domain.
 */
export function identifyPeer(cert: X509Certificate, trustDomain: string): PeerCertificate | PeerRejection {
  if (!cert.keyUsage?.includes(CLIENT_AUTH_OID)) return 'no_client_auth';
  if (cert.ca) return 'is_ca';
  // Node lists SANs as "TYPE:value, ..." and quotes values holding separators; a quoted
  // value can never be a valid spiffe id of ours, so it fails parsing below.
  const uris = (cert.subjectAltName ?? '').split(', ').filter((e) => e.startsWith('URI:'));
  if (uris.length !== 1) return 'uri_san_count';
  const identity = parseSpiffeUri((uris[0] as string).slice(4), trustDomain);
  if (!identity) return 'bad_identity';
  return {
    identity,
    serial: normalizeSerialHex(cert.serialNumber),
    notAfterMs: Date.parse(cert.validTo),
    spkiDer: cert.publicKey.export({ type: 'spki', format: 'der' }),
  };
}
