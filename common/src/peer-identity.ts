import { X509Certificate } from 'node:crypto';
import type { PeerCertificate as TlsPeerCertificate } from 'node:tls';
import { parseSpiffeUri, type Identity } from './identity.js';
import { authorityKeyId } from './key-identifiers.js';
import { normalizeSerialHex } from './serial.js';

/** id-kp-clientAuth (RFC 5280 §4.2.1.12). */
export const CLIENT_AUTH_OID = '1.3.6.1.5.5.7.3.2';

export type PeerRejection = 'no_client_auth' | 'is_ca' | 'uri_san_count' | 'bad_identity';

export interface PeerCertificate {
  readonly identity: Identity;
  /** Canonical serial (normalizeSerialHex). */
  readonly serial: string;
  readonly notAfterMs: number;
  /** The SubjectPublicKeyInfo, DER; computed on first use (the broker never needs it). */
  readonly spkiDer: Buffer;
  /**
   * The keyIdentifier of its Authority Key Identifier, lower-case hex: which CA issued it
   * (the broker pins it to the trust bundle). Undefined when it has none. Computed on first use.
   */
  readonly authorityKeyId: string | undefined;
}

interface ProfileFields {
  eku: readonly string[] | undefined;
  ca: boolean;
  subjectAltName: string | undefined;
  serialNumber: string;
  validTo: string;
  spki: () => Buffer;
  der: () => Buffer;
}

/**
 * The identity of a client certificate whose chain the TLS layer has already verified.
 * TLS accepts leaves without an EKU and X.509 v1 leaves, so the profile is checked here:
 * clientAuth EKU (which a v1 certificate cannot carry), not a CA, exactly one URI SAN and
 * it is a spiffe id in our trust domain.
 */
export function identifyPeer(cert: X509Certificate, trustDomain: string): PeerCertificate | PeerRejection {
  return identify(
    {
      eku: cert.keyUsage,
      ca: cert.ca,
      subjectAltName: cert.subjectAltName,
      serialNumber: cert.serialNumber,
      validTo: cert.validTo,
      spki: () => cert.publicKey.export({ type: 'spki', format: 'der' }),
      der: () => cert.raw,
    },
    trustDomain,
  );
}

/**
 * The same, from `tlsSocket.getPeerCertificate()`: measured here at about a third of the
 * cost of getPeerX509Certificate(), which matters on a broker's connect path.
 */
export function identifyTlsPeer(cert: TlsPeerCertificate, trustDomain: string): PeerCertificate | PeerRejection {
  // Only the DER outlives this call: the details object (fingerprints, names, key) would
  // otherwise stay alive for every connection a broker holds.
  const raw = cert.raw;
  return identify(
    {
      eku: (cert as TlsPeerCertificate & { ext_key_usage?: string[] }).ext_key_usage,
      ca: (cert as TlsPeerCertificate & { ca?: boolean }).ca === true,
      subjectAltName: cert.subjectaltname,
      serialNumber: cert.serialNumber,
      validTo: cert.valid_to,
      spki: () => new X509Certificate(raw).publicKey.export({ type: 'spki', format: 'der' }),
      der: () => raw,
    },
    trustDomain,
  );
}

function identify(f: ProfileFields, trustDomain: string): PeerCertificate | PeerRejection {
  if (!f.eku?.includes(CLIENT_AUTH_OID)) return 'no_client_auth';
  if (f.ca) return 'is_ca';
  // Node lists SANs as "TYPE:value, ..." and quotes values holding separators; a quoted
  // value can never be a valid spiffe id of ours, so it fails parsing below.
  const uris = (f.subjectAltName ?? '').split(', ').filter((e) => e.startsWith('URI:'));
  if (uris.length !== 1) return 'uri_san_count';
  const identity = parseSpiffeUri((uris[0] as string).slice(4), trustDomain);
  if (!identity) return 'bad_identity';
  const { spki: spkiOf, der } = f;
  let spki: Buffer | undefined;
  let aki: { value: string | undefined } | undefined;
  return {
    identity,
    serial: normalizeSerialHex(f.serialNumber),
    notAfterMs: Date.parse(f.validTo),
    get spkiDer() {
      return (spki ??= spkiOf());
    },
    get authorityKeyId() {
      return (aki ??= { value: authorityKeyId(der()) }).value;
    },
  };
}
