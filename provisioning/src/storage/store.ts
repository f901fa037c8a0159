import type { WebhookOutbox } from '../webhooks/outbox.js';
import type { FleetAuditQuery, FleetAuditRows } from './fleet-audit-queries.js';
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
  /** Set when a revocation of its subject cancelled it before it was spent; a cancelled token never enrolls. */
  cancelledAt: number | undefined;
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
  /** The signing CA's key identifier (the certificate's AKI), lower-case hex; absent for certificates recorded before it was kept. */
  issuerKeyId?: string | undefined;
  revokedAt: number | undefined;
  revokedBy: string | undefined;
  /** RFC 5280 §5.3.1 reason given when it was revoked on its own; absent for `unspecified`. */
  revocationReason?: RevocationReason | undefined;
}

/** A certificate as listings read it: everything but the PEM. */
export type CertificateListing = Omit<CertificateRecord, 'pem'>;

export interface DeviceRecord {
  id: string;
  kind: TokenKind;
  createdAt: number;
  /** Lifetime of the certificates issued to it, renewal included (its profile). */
  certTtlSeconds: number;
  /**
   * Serial of the last certificate issued to it, by enrollment or renewal: the only one that
   * may renew (renewal lineage). Undefined before the first issuance. Set by the store.
   */
  currentSerial?: string | undefined;
}

export interface RevokedEntry {
  serial: string;
  revokedAt: number;
  /** Absent for `unspecified` (RFC 5280 §5.3.1: the extension is then left out). */
  reason?: RevocationReason;
}

export interface Enrollment {
  tokenHash: string;
  spkiHash: string;
  device: Omit<DeviceRecord, 'currentSerial'>;
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
   * Spends the token (only if still unspent and not cancelled), upserts the device with the
   * token's profile, makes the new certificate the device's current one (superseding any
   * earlier) and records it and an audit event, in one transaction. Returns false, changing
   * nothing, when the token had been spent or cancelled meanwhile. Throws `invalid_request`,
   * changing nothing, when the name is already enrolled as the other kind (device/service):
   * the check and the insert are one statement, so two instances cannot both win.
   */
  recordEnrollment(enrollment: Enrollment): Promise<boolean>;
  /**
   * Records a renewal's certificate and audit event, in one transaction, only while the
   * certificate it was authenticated with is unrevoked (else `revoked`) and still the
   * device's current one (else `superseded`); the new certificate becomes current. Changes
   * nothing unless `recorded`: of two concurrent renewals of one certificate, one wins.
   */
  recordRenewal(certificate: Enrollment['certificate'], presentedSerial: string): Promise<RenewalOutcome>;
  /** Certificates issued by renewing `serial`, oldest first (normally at most one). */
  findRenewalsOf(serial: string): Promise<CertificateRecord[]>;
  findCertificate(serial: string): Promise<CertificateRecord | undefined>;
  findDevice(id: string): Promise<DeviceRecord | undefined>;
  listDevices(): Promise<DeviceRecord[]>;
  listCertificates(deviceId: string): Promise<CertificateRecord[]>;
  /**
   * Revokes every live certificate of the device and, in the same transaction, cancels every
   * token minted for it and not yet spent (a token minted later works: re-admission); returns
   * the revoked serials (possibly none) and how many tokens were cancelled. Cancelled tokens
   * get one audit entry (action `revoke`, no serial), so a device that never enrolled can be
   * revoked too: that is how an operator withdraws a leaked token.
   */
  revokeDevice(deviceId: string, at: number, by: string): Promise<DeviceRevocation>;
  /** Revoked certificates that have not yet expired at `now`: what a CRL must list. */
  listRevoked(now: number): Promise<RevokedEntry[]>;
  /** Changes whenever a revocation is recorded, by any process sharing the store. */
  revocationVersion(): Promise<number>;
  /**
   * Next value of the monotonically increasing CRL number (RFC 5280 §5.2.3): one above the
   * last, and at least `atLeast`, in one atomic step shared by every process on the store.
   */
  nextCrlNumber(atLeast?: bigint): Promise<bigint>;
  /** Audit trail of issuances and revocations, newest last. */
  listAudit(deviceId?: string): Promise<AuditEvent[]>;
  /** One page of devices in id order (keyset: ids after `after`); reads at most `limit` device rows. */
  listDevicePage(query: DevicePageQuery): Promise<DeviceRecord[]>;
  /** The certificates of these devices (one page), without PEMs, by device then issue time. */
  listCertificatesOf(deviceIds: readonly string[]): Promise<CertificateListing[]>;
  /**
   * Revokes one certificate with a reason (and its audit entry), bumping the revocation
   * version; `already` changes nothing and answers the earlier revocation.
   */
  revokeCertificate(serial: string, at: number, by: string, reason: RevocationReason): Promise<CertificateRevocation>;
  /** One page of the audit trail in record order, after record `afterId`. */
  listAuditPage(query: AuditPageQuery): Promise<AuditRecord[]>;
  /**
   * Deletes at most `batch` certificates that expired before `cutoff` (never a device's
   * current one) and at most `batch` tokens spent, cancelled or expired before it. The audit
   * trail is kept. Returns how many of each went.
   */
  prune(cutoff: number, batch: number): Promise<PruneCount>;
  /** Devices whose current certificate is unrevoked and expires after `now` and at or before `before` (ms): the expiry gauges. */
  countExpiring(now: number, before: number): Promise<number>;
  /** The fleet audit's counts and first devices per finding (audit/fleet-report.ts words them). */
  fleetAudit(query: FleetAuditQuery): Promise<FleetAuditRows>;
  /** The webhook outbox kept in this store (events written by the store in the recording transaction). */
  outbox(): WebhookOutbox;
  /** Cheap round trip for /readyz. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/**
 * A device's status is its current certificate's: `active` (unrevoked, not expired at
 * `now`), `revoked`, or `expired` (unrevoked, notAfter ≤ now).
 */
export type DeviceStatus = 'active' | 'revoked' | 'expired';

export interface DevicePageQuery {
  /** Exclusive lower bound on the id (the last id of the previous page); default: from the start. */
  after?: string | undefined;
  limit: number;
  status?: DeviceStatus | undefined;
  /** Only devices whose current certificate's notAfter is before this, ms. */
  expiringBefore?: number | undefined;
  /** The time `status` is judged at, ms. */
  now: number;
}

export interface AuditPageQuery {
  /** Exclusive lower bound on the record id; default: from the first. */
  afterId?: number | undefined;
  limit: number;
  deviceId?: string | undefined;
}

/** An audit event with its record id (the cursor) and, for a revocation, its reason. */
export interface AuditRecord extends AuditEvent {
  id: number;
  reason?: RevocationReason;
}

/** RFC 5280 §5.3.1 CRLReason names this service records (certificateHold and removeFromCRL are refused). */
export type RevocationReason =
  | 'unspecified'
  | 'keyCompromise'
  | 'cACompromise'
  | 'affiliationChanged'
  | 'superseded'
  | 'cessationOfOperation'
  | 'privilegeWithdrawn'
  | 'aACompromise';

export interface CertificateRevocation {
  readonly outcome: 'revoked' | 'already' | 'not_found';
  /** The certificate after the call (absent for not_found). */
  readonly certificate?: CertificateRecord;
}

export interface PruneCount {
  readonly certificates: number;
  readonly tokens: number;
}

/** What one revocation of a device changed. */
export interface DeviceRevocation {
  readonly serials: string[];
  readonly tokensCancelled: number;
}

export type RenewalOutcome = 'recorded' | 'revoked' | 'superseded';

export type AuditAction = 'token' | 'issue' | 'renew' | 'revoke';

export interface AuditEvent {
  at: number;
  actor: string;
  action: AuditAction;
  subject: string;
  serial: string | undefined;
  notAfter: number | undefined;
}
