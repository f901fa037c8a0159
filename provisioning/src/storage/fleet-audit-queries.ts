/**
 * The fleet audit's questions to the store, in SQL both stores run ($n placeholders; the
 * SQLite store turns them into ?). "Current" is a device's current certificate
 * (devices.current_serial): superseded certificates are meant to lapse and are not findings.
 * Times are ms since the epoch. "Renewal overdue" is past the latest renewal point any
 * certificate carries: each one's renewAfter (common rotation.ts renewAfterMs) is a fraction
 * of the lifetime from issuance picked from its serial in [0.6, 0.75), which SQL cannot
 * hash alike on both stores, so the query uses the window's end, 3/4, in integer
 * arithmetic. Every certificate it lists is past its own renewAfter; one between its own
 * renewAfter and 3/4 is not listed yet.
 */
const CURRENT = `FROM certificates c JOIN devices d ON d.id = c.subject AND d.current_serial = c.serial
  WHERE c.revoked_at IS NULL`;
const COLUMNS = 'SELECT c.subject, c.serial, c.not_before, c.not_after, c.issued_at';
const EXPIRED = 'c.not_after <= $1';
const EXPIRING = 'c.not_after > $1 AND c.not_after <= $2';
const OVERDUE = 'c.not_after > $1 AND c.issued_at + (c.not_after - c.issued_at) * 3 / 4 < $1';
const RETIRED = 'c.not_after > $1 AND c.issuer_key_id IS NOT NULL AND c.issuer_key_id <> $2';

export const FLEET_AUDIT_SQL = {
  countExpired: `SELECT COUNT(*) AS n ${CURRENT} AND ${EXPIRED}`,
  listExpired: `${COLUMNS} ${CURRENT} AND ${EXPIRED} ORDER BY c.not_after DESC, c.subject LIMIT $2`,
  countExpiring: `SELECT COUNT(*) AS n ${CURRENT} AND ${EXPIRING}`,
  listExpiring: `${COLUMNS} ${CURRENT} AND ${EXPIRING} ORDER BY c.not_after, c.subject LIMIT $3`,
  countOverdue: `SELECT COUNT(*) AS n ${CURRENT} AND ${OVERDUE}`,
  listOverdue: `${COLUMNS} ${CURRENT} AND ${OVERDUE} ORDER BY c.not_after, c.subject LIMIT $2`,
  countRetired: `SELECT COUNT(*) AS n ${CURRENT} AND ${RETIRED}`,
  listRetired: `${COLUMNS}, c.issuer_key_id ${CURRENT} AND ${RETIRED} ORDER BY c.not_after, c.subject LIMIT $3`,
  countIssuerUnknown: `SELECT COUNT(*) AS n ${CURRENT} AND c.not_after > $1 AND c.issuer_key_id IS NULL`,
  tokens: `SELECT
      COALESCE(SUM(CASE WHEN expires_at > $1 THEN 1 ELSE 0 END), 0) AS outstanding,
      COALESCE(SUM(CASE WHEN expires_at <= $1 THEN 1 ELSE 0 END), 0) AS expired
    FROM tokens WHERE consumed_at IS NULL AND cancelled_at IS NULL`,
} as const;

/** One current certificate as the audit lists it (store units: ms). */
export interface AuditedCertificate {
  subject: string;
  serial: string;
  notBefore: number;
  notAfter: number;
  issuedAt: number;
  /** The signing CA's key identifier, when the store kept it (the retired-intermediate list). */
  issuerKeyId?: string;
}

/** What the store answers for a fleet audit; the report (audit/fleet-report.ts) words it. */
export interface FleetAuditRows {
  expired: { count: number; sample: AuditedCertificate[] };
  expiring: { count: number; sample: AuditedCertificate[] };
  renewalOverdue: { count: number; sample: AuditedCertificate[] };
  /** Live current certificates signed by another CA key than `activeIssuerKeyId`; `unknown`: recorded before the store kept the signer. */
  retiredIssuer: { count: number; sample: AuditedCertificate[]; unknown: number };
  tokens: { outstanding: number; expired: number };
}

export interface FleetAuditQuery {
  now: number;
  /** Certificates expiring after `now` and at or before this are "expiring", ms. */
  expiringBefore: number;
  /** Devices listed per finding (the counts are always whole). */
  limit: number;
  /** The key identifier of the intermediate that signs now (lower-case hex). */
  activeIssuerKeyId: string;
}

/** A row of the list queries, as either driver returns it (PostgreSQL's BIGINT as text). */
export function auditedCertificate(row: Record<string, unknown>): AuditedCertificate {
  return {
    subject: String(row.subject),
    serial: String(row.serial),
    notBefore: Number(row.not_before),
    notAfter: Number(row.not_after),
    issuedAt: Number(row.issued_at),
    ...(row.issuer_key_id === undefined || row.issuer_key_id === null ? {} : { issuerKeyId: String(row.issuer_key_id) }),
  };
}

/**
 * Runs the audit with `run(sql, params)` (each store's own query call): the same
 * statements, in the same order, on SQLite and PostgreSQL.
 */
export async function fleetAuditWith(run: (sql: string, params: readonly (number | string)[]) => Promise<Record<string, unknown>[]>, q: FleetAuditQuery): Promise<FleetAuditRows> {
  const count = async (sql: string, params: readonly (number | string)[]) => Number((await run(sql, params))[0]?.n ?? 0);
  const list = async (sql: string, params: readonly (number | string)[]) => (await run(sql, params)).map(auditedCertificate);
  const [tokenRow] = await run(FLEET_AUDIT_SQL.tokens, [q.now]);
  return {
    expired: { count: await count(FLEET_AUDIT_SQL.countExpired, [q.now]), sample: await list(FLEET_AUDIT_SQL.listExpired, [q.now, q.limit]) },
    expiring: { count: await count(FLEET_AUDIT_SQL.countExpiring, [q.now, q.expiringBefore]), sample: await list(FLEET_AUDIT_SQL.listExpiring, [q.now, q.expiringBefore, q.limit]) },
    renewalOverdue: { count: await count(FLEET_AUDIT_SQL.countOverdue, [q.now]), sample: await list(FLEET_AUDIT_SQL.listOverdue, [q.now, q.limit]) },
    retiredIssuer: {
      count: await count(FLEET_AUDIT_SQL.countRetired, [q.now, q.activeIssuerKeyId]),
      sample: await list(FLEET_AUDIT_SQL.listRetired, [q.now, q.activeIssuerKeyId, q.limit]),
      unknown: await count(FLEET_AUDIT_SQL.countIssuerUnknown, [q.now]),
    },
    tokens: { outstanding: Number(tokenRow?.outstanding ?? 0), expired: Number(tokenRow?.expired ?? 0) },
  };
}
