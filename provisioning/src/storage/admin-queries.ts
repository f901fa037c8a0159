import type { AuditPageQuery, DevicePageQuery } from './store.js';

/** A statement with its parameters in order; `$n` placeholders, rewritten to `?` for SQLite. */
export interface Query {
  readonly text: string;
  readonly params: unknown[];
}

/** Columns of a certificate listing: everything but the PEM, which a page never needs. */
export const LISTING_COLUMNS =
  'serial, subject, kind, spki_hash, not_before, not_after, issued_at, issued_by, revoked_at, revoked_by, revocation_reason';

/**
 * Keyset page of devices: `id > after ORDER BY id LIMIT n` walks the primary key from the
 * cursor and stops after `limit` matching rows; the status filter joins each device to its
 * current certificate by primary key. No OFFSET, no sort, no read of earlier pages.
 */
export function devicePageQuery(q: DevicePageQuery): Query {
  const params: unknown[] = [q.after ?? ''];
  const where = ['d.id > $1'];
  const param = (v: unknown): string => `$${params.push(v)}`;
  if (q.status === 'active') where.push(`c.revoked_at IS NULL AND c.not_after > ${param(q.now)}`);
  else if (q.status === 'revoked') where.push('c.revoked_at IS NOT NULL');
  else if (q.status === 'expired') where.push(`c.revoked_at IS NULL AND (c.serial IS NULL OR c.not_after <= ${param(q.now)})`);
  if (q.expiringBefore !== undefined) where.push(`c.not_after < ${param(q.expiringBefore)}`);
  const text = `SELECT d.* FROM devices d LEFT JOIN certificates c ON c.serial = d.current_serial
    WHERE ${where.join(' AND ')} ORDER BY d.id LIMIT ${param(q.limit)}`;
  return { text, params };
}

/** Keyset page of the audit trail by record id, optionally for one subject. */
export function auditPageQuery(q: AuditPageQuery): Query {
  const params: unknown[] = [q.afterId ?? 0];
  const param = (v: unknown): string => `$${params.push(v)}`;
  const subject = q.deviceId === undefined ? '' : ` AND subject = ${param(q.deviceId)}`;
  return { text: `SELECT * FROM audit WHERE id > $1${subject} ORDER BY id LIMIT ${param(q.limit)}`, params };
}

/** Certificates that expired before $1, never a device's current one, at most $2 of them. */
export const PRUNABLE_CERTIFICATES = `SELECT c.serial FROM certificates c WHERE c.not_after < $1
  AND NOT EXISTS (SELECT 1 FROM devices d WHERE d.id = c.subject AND d.current_serial = c.serial) LIMIT $2`;

/** Tokens expired, spent or cancelled before $1 (an unspent live token is never one), at most $2. */
export const PRUNABLE_TOKENS = `SELECT hash FROM tokens WHERE expires_at < $1 OR consumed_at < $1 OR cancelled_at < $1 LIMIT $2`;

/** `$n` → `?` for SQLite, repeating parameters used twice. */
export function forSqlite(q: Query): Query {
  const params: unknown[] = [];
  const text = q.text.replace(/\$(\d+)/g, (_, n: string) => {
    params.push(q.params[Number(n) - 1]);
    return '?';
  });
  return { text, params };
}
