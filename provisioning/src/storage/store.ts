import type { TokenKind } from '@tlsfleet/common';

/** Times are ms since the epoch throughout; serials are lower-case hex without leading zeros stripped. */

export interface NewToken {
  /** SHA-256 of the token, hex. The token itself is never stored. */
  hash: string;
  subject: string;
  kind: TokenKind;
  expiresAt: number;
  certTtlSeconds: number;
  createdAt: number;
  createdBy: string;
}

export interface TokenRecord extends NewToken {
  consumedAt: number | undefined;
  /** SHA-256 of the SPKI the token was spent on (idempotent replay within 10 minutes). */
  consumedSpkiHash: string | undefined;
  consumedSerial: string | undefined;
}

export interface CertificateRecord {
  serial: string;
  subject: string;
  kind: TokenKind;
  spkiHash: string;
  pem: string;
  notBefore: number;
  notAfter: number;
  issuedAt: number;
  issuedBy: string;
  revokedAt: number | undefined;
  revokedBy: string | undefined;
}

export interface DeviceRecord {
  id: string;
  kind: TokenKind;
  createdAt: number;
  /** Lifetime of the certificates issued to it, renewal included (its profile). */
  certTtlSeconds: number;
}

export interface RevokedEntry {
  serial: string;
  revokedAt: number;
}

export interface Enrollment {
  tokenHash: string;
  spkiHash: string;
  device: DeviceRecord;
  certificate: Omit<CertificateRecord, 'revokedAt' | 'revokedBy'>;
}

/**
 * Persistence of tokens, devices, certificates and the audit trail. Implemented by the
 * embedded SQLite store; a PostgreSQL store implements the same contract for several
 * provisioning instances. Every method that changes two things changes both or neither.
 */
export interface Store {
  createToken(token: NewToken): Promise<void>;
  findToken(hash: string): Promise<TokenRecord | undefined>;
  /**
   * Spends the token (only if still unspent), upserts the device with the token's profile
   * and records the certificate and an audit event, in one transaction. Returns false,
   * changing nothing, when the token had been spent meanwhile.
   */
  recordEnrollment(enrollment: Enrollment): Promise<boolean>;
  /**
   * Records a renewal's certificate and audit event, in one transaction, only while the
   * certificate it was authenticated with is still unrevoked; false, changing nothing, if a
   * revocation won the race.
   */
  recordRenewal(certificate: Enrollment['certificate'], presentedSerial: string): Promise<boolean>;
  findCertificate(serial: string): Promise<CertificateRecord | undefined>;
  findDevice(id: string): Promise<DeviceRecord | undefined>;
  listDevices(): Promise<DeviceRecord[]>;
  listCertificates(deviceId: string): Promise<CertificateRecord[]>;
  /** Revokes every live certificate of the device; returns their serials (possibly none). */
  revokeDevice(deviceId: string, at: number, by: string): Promise<string[]>;
  /** Revoked certificates that have not yet expired at `now`: what a CRL must list. */
  listRevoked(now: number): Promise<RevokedEntry[]>;
  /** Changes whenever a revocation is recorded, by any process sharing the store. */
  revocationVersion(): Promise<number>;
  /** Next value of the monotonically increasing CRL number (RFC 5280 §5.2.3). */
  nextCrlNumber(): Promise<bigint>;
  /** Audit trail of issuances and revocations, newest last. */
  listAudit(deviceId?: string): Promise<AuditEvent[]>;
  /** Cheap round trip for /readyz. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

export type AuditAction = 'token' | 'issue' | 'renew' | 'revoke';

export interface AuditEvent {
  at: number;
  actor: string;
  action: AuditAction;
  subject: string;
  serial: string | undefined;
  notAfter: number | undefined;
}
