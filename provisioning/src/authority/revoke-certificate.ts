import { TlsfleetError } from '@tlsfleet/common';
import type { RevocationReason, Store } from '../storage/store.js';
import { parseRevocationReason, parseSerialHex } from './revocation-reason.js';

/** The outcome of revoking one certificate, as the admin API answers it. */
export interface CertificateRevoked {
  readonly serial: string;
  readonly deviceId: string;
  readonly reason: RevocationReason;
  readonly revokedAt: Date;
  /** True when it had been revoked before: nothing changed, and the first revocation's time and reason are answered. */
  readonly alreadyRevoked: boolean;
}

/**
 * parseSerialHex → parseRevocationReason → revoke in the store (one transaction, audited).
 * Revoking an already revoked certificate is idempotent: an admin retrying after a lost answer
 * must not see an error, and the first revocation's reason stands.
 */
export async function revokeCertificate(store: Store, serialHex: string, reason: unknown, by: string, now: number): Promise<CertificateRevoked> {
  const serial = parseSerialHex(serialHex);
  const asked = parseRevocationReason(reason);
  const { outcome, certificate } = await store.revokeCertificate(serial, now, by, asked);
  if (outcome === 'not_found' || certificate === undefined) throw new TlsfleetError('not_found', `No certificate with serial ${serial}.`);
  return {
    serial,
    deviceId: certificate.subject,
    reason: certificate.revocationReason ?? 'unspecified',
    revokedAt: new Date(certificate.revokedAt ?? now),
    alreadyRevoked: outcome === 'already',
  };
}
