import type { AuditEvent, AuditRecord, CertificateListing, CertificateRecord, DeviceRecord, RevocationReason, RevokedEntry, TokenRecord } from './store.js';

/** A row as either SQL store reads it: snake_case columns; integers as numbers (SQLite) or decimal strings (PostgreSQL BIGINT). */
export type Row = Record<string, unknown>;

/** NULL → undefined; otherwise a number (ms times and counts fit a double exactly). */
export const num = (v: unknown): number | undefined => (v === null || v === undefined ? undefined : Number(v));
export const str = (v: unknown): string | undefined => (v === null || v === undefined ? undefined : String(v));

export function tokenFromRow(r: Row): TokenRecord {
  return {
    hash: String(r.hash),
    subject: String(r.subject),
    kind: r.kind as TokenRecord['kind'],
    expiresAt: Number(r.expires_at),
    certTtlSeconds: Number(r.cert_ttl_seconds),
    createdAt: Number(r.created_at),
    createdBy: String(r.created_by),
    consumedAt: num(r.consumed_at),
    consumedSpkiHash: str(r.consumed_spki_hash),
    consumedSerial: str(r.consumed_serial),
    cancelledAt: num(r.cancelled_at),
  };
}

export function certificateFromRow(r: Row): CertificateRecord {
  return { ...listingFromRow(r), pem: String(r.pem) };
}

/** A certificate row read without its PEM column. */
export function listingFromRow(r: Row): CertificateListing {
  const reason = str(r.revocation_reason) as RevocationReason | undefined;
  return {
    serial: String(r.serial),
    subject: String(r.subject),
    kind: r.kind as CertificateRecord['kind'],
    spkiHash: String(r.spki_hash),
    notBefore: Number(r.not_before),
    notAfter: Number(r.not_after),
    issuedAt: Number(r.issued_at),
    issuedBy: String(r.issued_by),
    ...(r.issuer_key_id === null || r.issuer_key_id === undefined ? {} : { issuerKeyId: String(r.issuer_key_id) }),
    revokedAt: num(r.revoked_at),
    revokedBy: str(r.revoked_by),
    ...(reason === undefined ? {} : { revocationReason: reason }),
  };
}

export function deviceFromRow(r: Row): DeviceRecord {
  return {
    id: String(r.id),
    kind: r.kind as DeviceRecord['kind'],
    createdAt: Number(r.created_at),
    certTtlSeconds: Number(r.cert_ttl_seconds),
    currentSerial: str(r.current_serial),
  };
}

export function auditFromRow(r: Row): AuditEvent {
  return {
    at: Number(r.at),
    actor: String(r.actor),
    action: r.action as AuditEvent['action'],
    subject: String(r.subject),
    serial: str(r.serial),
    notAfter: num(r.not_after),
  };
}

export function auditRecordFromRow(r: Row): AuditRecord {
  const reason = str(r.reason) as RevocationReason | undefined;
  return { id: Number(r.id), ...auditFromRow(r), ...(reason === undefined ? {} : { reason }) };
}

export function revokedFromRow(r: Row): RevokedEntry {
  const reason = str(r.revocation_reason) as RevocationReason | undefined;
  return { serial: String(r.serial), revokedAt: Number(r.revoked_at), ...(reason === undefined ? {} : { reason }) };
}
