import { verify as verifySignature, X509Certificate, type KeyObject } from 'node:crypto';
import { identifyPeer, pemToDer, TlsfleetError, type PeerCertificate } from '@tlsfleet/common';
import type { Store } from '../storage/store.js';
import type { RenewalGrant } from './renewal-lineage.js';
import { grantInLineage } from './peer-certificate.js';

/** Largest `proof` accepted, base64 characters: an RSA-8192 signature is 1,366. */
const MAX_PROOF_CHARS = 2048;

/** What POST /v1/renew-expired carries once its shape is checked: the expired certificate, the new CSR, the proof. */
export interface ExpiredRenewalRequest {
  readonly certificate: X509Certificate;
  readonly peer: PeerCertificate;
  readonly csrDer: Buffer;
  readonly proof: Buffer;
}

/**
 * Reads `{certificate, csr, proof}` without any signature check: one PEM certificate in our
 * device profile, one PEM CSR (parsed later by readCsr), a base64 proof. Anything else is 400.
 */
export function readExpiredRenewal(body: unknown, trustDomain: string, csrFromPem: (pem: unknown) => Buffer): ExpiredRenewalRequest {
  const b = body as { certificate?: unknown; csr?: unknown; proof?: unknown } | undefined;
  if (typeof b?.certificate !== 'string') throw new TlsfleetError('invalid_request', 'The body needs a "certificate" string holding the expired certificate (PEM).');
  if (typeof b.proof !== 'string' || b.proof.length === 0 || b.proof.length > MAX_PROOF_CHARS || !/^[A-Za-z0-9+/]+={0,2}$/.test(b.proof)) {
    throw new TlsfleetError('invalid_request', 'The body needs a "proof" string: the base64 signature of the CSR\'s DER by the expired certificate\'s key.');
  }
  const csrDer = csrFromPem(b.csr);
  const der = pemToDer(b.certificate, 'CERTIFICATE');
  if (!der) throw new TlsfleetError('invalid_request', 'The "certificate" is not exactly one PEM CERTIFICATE block.');
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(der);
  } catch {
    throw new TlsfleetError('invalid_request', 'The "certificate" is not a readable X.509 certificate.');
  }
  const peer = identifyPeer(certificate, trustDomain);
  if (typeof peer === 'string') throw new TlsfleetError('forbidden', `The certificate is not a tlsfleet identity (${peer}).`);
  if (peer.identity.kind === 'admin') throw new TlsfleetError('forbidden', 'Admin certificates are not renewed through enrollment.');
  return { certificate, peer, csrDer, proof: Buffer.from(b.proof, 'base64') };
}

/**
 * The certificate's signature by one of our issuing intermediates (the current one, or the
 * previous one during a rotation), checked without looking at any validity period: that is
 * the chain to the trust bundle with only the expiry ignored. Not ours: `unauthorized`, as a
 * foreign client certificate on /v1/renew.
 */
export function requireIssuedByUs(certificate: X509Certificate, issuers: readonly X509Certificate[]): void {
  for (const issuer of issuers) {
    if (certificate.checkIssued(issuer) && certificate.verify(issuer.publicKey)) return;
  }
  throw new TlsfleetError('unauthorized', 'The certificate was not issued by this service\'s CA.');
}

/**
 * The store's half, all lookups: the certificate expired (else use /v1/renew), less than
 * `windowMs` ago, is one we issued to that identity, is not revoked, and is the device's
 * current certificate (or was renewed within the replay window, for a lost answer).
 */
export async function authorizeExpiredRenewal(store: Store, peer: PeerCertificate, nowMs: number, windowMs: number): Promise<RenewalGrant> {
  if (nowMs < peer.notAfterMs) throw new TlsfleetError('invalid_request', 'The certificate has not expired: renew it with POST /v1/renew over mTLS.');
  if (nowMs - peer.notAfterMs >= windowMs) {
    throw new TlsfleetError('forbidden', `The certificate expired at ${new Date(peer.notAfterMs).toISOString()}, longer ago than this service renews after expiry; enroll again with a new token.`);
  }
  return grantInLineage(store, peer, nowMs, `renewal-after-expiry:${peer.serial}`);
}

/**
 * `proof` must be the signature of the CSR's DER by the expired certificate's key, one rule
 * per key type: EC P-256 ECDSA with SHA-256, EC P-384 ECDSA with SHA-384 (both DER-encoded
 * ECDSA-Sig-Value), RSA PKCS#1 v1.5 with SHA-256, Ed25519 plain. A proof that does not
 * verify is `forbidden`: the request does not show the key.
 */
export function verifyProof(key: KeyObject, csrDer: Buffer, proof: Buffer): void {
  let valid: boolean;
  try {
    valid = verifySignature(proofDigest(key), csrDer, key, proof);
  } catch {
    valid = false; // a signature OpenSSL cannot even parse
  }
  if (!valid) {
    throw new TlsfleetError('forbidden', 'The proof is not a signature of the CSR by the expired certificate\'s key.');
  }
}

/** The digest the proof uses for this key (null: Ed25519 signs the message itself). */
export function proofDigest(key: KeyObject): string | null {
  if (key.asymmetricKeyType === 'ed25519') return null;
  if (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'secp384r1') return 'sha384';
  return 'sha256';
}
