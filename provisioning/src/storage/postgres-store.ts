import pg from 'pg';
import type {
  AuditEvent, AuditPageQuery, AuditRecord, CertificateListing, CertificateRecord, CertificateRevocation, DevicePageQuery, DeviceRecord,
  DeviceRevocation, Enrollment, NewToken, PruneCount, RenewalOutcome, RevocationReason, RevokedEntry, Store, TokenRecord,
} from './store.js';
import { auditPageQuery, devicePageQuery, LISTING_COLUMNS, PRUNABLE_CERTIFICATES, PRUNABLE_TOKENS } from './admin-queries.js';
import { kindClash } from './kind-clash.js';
import { POSTGRES_MIGRATION_LOCK, POSTGRES_MIGRATIONS, POSTGRES_MIGRATIONS_TABLE } from './postgres-migrations.js';
import { COUNT_EXPIRING } from './expiring-query.js';
import { fleetAuditWith, type FleetAuditQuery, type FleetAuditRows } from './fleet-audit-queries.js';
import { auditFromRow, auditRecordFromRow, certificateFromRow, deviceFromRow, listingFromRow, revokedFromRow, tokenFromRow, type Row } from './store-rows.js';
import { PostgresOutbox } from '../webhooks/postgres-outbox.js';
import type { WebhookOutbox } from '../webhooks/outbox.js';

const INSERT_CERTIFICATE = `INSERT INTO certificates (serial, subject, kind, spki_hash, pem, not_before, not_after, issued_at, issued_by, issuer_key_id)
  VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`;
const INSERT_RENEWAL = `INSERT INTO certificates (serial, subject, kind, spki_hash, pem, not_before, not_after, issued_at, issued_by, issuer_key_id, renewed_from)
  VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`;
const INSERT_AUDIT = 'INSERT INTO audit (at, actor, action, subject, serial, not_after) VALUES ($1, $2, $3, $4, $5, $6)';

function certificateParams(c: Enrollment['certificate']): unknown[] {
  return [c.serial, c.subject, c.kind, c.spkiHash, c.pem, c.notBefore, c.notAfter, c.issuedAt, c.issuedBy, c.issuerKeyId ?? null];
}

/** `postgres://user:secret@host/db` → `postgres://user:***@host/db`, for logs and error messages. */
export function redactConnectionString(url: string): string {
  try {
    const u = new URL(url);
    if (u.password !== '') u.password = '***';
    for (const key of [...u.searchParams.keys()]) if (/pass/i.test(key)) u.searchParams.set(key, '***');
    return u.toString();
  } catch {
    // Not a URL we can parse: say nothing of it rather than risk printing a secret.
    return 'postgres://(unparsable connection string)';
  }
}

export interface PostgresStoreOptions {
  /** Connections in the pool; default 10 (the issuance gate bounds concurrent work to 64 by default, most of it signing, not waiting on SQL). */
  poolSize?: number;
  /** An idle pooled connection failed (server restart, network); the pool replaces it. Default: ignored. */
  onError?: (err: Error) => void;
}

/**
 * The store for several provisioning instances: one PostgreSQL database shared by all of
 * them. Each method that changes more than one row is one transaction; the races between
 * instances are settled by the database: a token is spent by a conditional UPDATE (the row
 * lock makes a second spender wait and then find it spent), serials are a primary key, and a
 * renewal and a revocation of the same device lock the device row, so one of them sees the
 * other's result.
 */
export class PostgresStore implements Store {
  private readonly pool: pg.Pool;
  private closing: Promise<void> | undefined;
  private webhookOutbox: PostgresOutbox | undefined;

  private constructor(pool: pg.Pool) {
    this.pool = pool;
  }

  /** Connects, applies pending migrations (once across instances starting together), and returns the store. */
  static async open(connectionString: string, opts: PostgresStoreOptions = {}): Promise<PostgresStore> {
    const pool = new pg.Pool({
      connectionString,
      max: opts.poolSize ?? 10,
      connectionTimeoutMillis: 10_000,
      idleTimeoutMillis: 30_000,
      application_name: 'tlsfleet-provisioning',
    });
    // Without a listener an idle connection's error would crash the process.
    pool.on('error', (err) => opts.onError?.(err));
    try {
      await migrate(pool);
    } catch (err) {
      // node-postgres never ends a client whose SCRAM exchange failed (no password given to a
      // server that asks for one), so pool.end() would wait forever: the refusal must not.
      await Promise.race([pool.end().catch(() => undefined), new Promise((resolve) => setTimeout(resolve, 1_000).unref())]);
      throw new Error(`cannot open the PostgreSQL store ${redactConnectionString(connectionString)}: ${(err as Error).message}`, { cause: err });
    }
    return new PostgresStore(pool);
  }

  private async tx<T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      const result = await fn(client);
      await client.query('COMMIT');
      client.release();
      return result;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      // Destroyed, not returned: after a failure mid-transaction its state is not worth trusting.
      client.release(err instanceof Error ? err : new Error(String(err)));
      throw err;
    }
  }

  async createToken(t: NewToken): Promise<void> {
    await this.tx(async (c) => {
      await c.query(
        `INSERT INTO tokens (hash, subject, kind, expires_at, cert_ttl_seconds, created_at, created_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7)`,
        [t.hash, t.subject, t.kind, t.expiresAt, t.certTtlSeconds, t.createdAt, t.createdBy],
      );
      await c.query(INSERT_AUDIT, [t.createdAt, t.createdBy, 'token', t.subject, null, null]);
    });
  }

  async findToken(hash: string): Promise<TokenRecord | undefined> {
    const { rows } = await this.pool.query<Row>('SELECT * FROM tokens WHERE hash = $1', [hash]);
    return rows[0] && tokenFromRow(rows[0]);
  }

  async recordEnrollment(e: Enrollment): Promise<boolean> {
    const c = e.certificate;
    return this.tx(async (client) => {
      // The row lock makes a concurrent spender (any instance) wait for this transaction and
      // then re-check `consumed_at IS NULL` against the committed row: exactly one wins.
      const spent = await client.query(
        `UPDATE tokens SET consumed_at = $1, consumed_spki_hash = $2, consumed_serial = $3
         WHERE hash = $4 AND consumed_at IS NULL AND cancelled_at IS NULL RETURNING hash`,
        [c.issuedAt, e.spkiHash, c.serial, e.tokenHash],
      );
      if (spent.rowCount !== 1) return false;
      // One statement checks the kind and inserts: a concurrent enrollment of the same name
      // as the other kind waits on the row, then finds the kind differs and changes nothing.
      const device = await client.query(
        `INSERT INTO devices (id, kind, created_at, cert_ttl_seconds, current_serial) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (id) DO UPDATE SET cert_ttl_seconds = excluded.cert_ttl_seconds, current_serial = excluded.current_serial
         WHERE devices.kind = excluded.kind`,
        [e.device.id, e.device.kind, e.device.createdAt, e.device.certTtlSeconds, c.serial],
      );
      if (device.rowCount !== 1) throw kindClash(e.device.id, e.device.kind);
      await client.query(INSERT_CERTIFICATE, certificateParams(c));
      await client.query(INSERT_AUDIT, [c.issuedAt, c.issuedBy, 'issue', c.subject, c.serial, c.notAfter]);
      return true;
    });
  }

  async recordRenewal(c: Enrollment['certificate'], presentedSerial: string): Promise<RenewalOutcome> {
    return this.tx(async (client): Promise<RenewalOutcome> => {
      // Same lock as revokeDevice: a revocation either commits first (and we see it below) or
      // waits for us (and then revokes the certificate we add too). A concurrent renewal of the
      // same certificate waits here too, then finds the lineage moved on.
      const device = await client.query<Row>('SELECT current_serial FROM devices WHERE id = $1 FOR UPDATE', [c.subject]);
      const presented = await client.query<Row>('SELECT revoked_at FROM certificates WHERE serial = $1', [presentedSerial]);
      const row = presented.rows[0];
      if (!row || row.revoked_at !== null) return 'revoked';
      if (device.rows[0]?.current_serial !== presentedSerial) return 'superseded';
      await client.query('UPDATE devices SET current_serial = $1 WHERE id = $2', [c.serial, c.subject]);
      await client.query(INSERT_RENEWAL, [...certificateParams(c), presentedSerial]);
      await client.query(INSERT_AUDIT, [c.issuedAt, c.issuedBy, 'renew', c.subject, c.serial, c.notAfter]);
      return 'recorded';
    });
  }

  async findRenewalsOf(serial: string): Promise<CertificateRecord[]> {
    const { rows } = await this.pool.query<Row>('SELECT * FROM certificates WHERE renewed_from = $1 ORDER BY issued_at, serial', [serial]);
    return rows.map(certificateFromRow);
  }

  async findCertificate(serial: string): Promise<CertificateRecord | undefined> {
    const { rows } = await this.pool.query<Row>('SELECT * FROM certificates WHERE serial = $1', [serial]);
    return rows[0] && certificateFromRow(rows[0]);
  }

  async findDevice(id: string): Promise<DeviceRecord | undefined> {
    const { rows } = await this.pool.query<Row>('SELECT * FROM devices WHERE id = $1', [id]);
    return rows[0] && deviceFromRow(rows[0]);
  }

  async listDevices(): Promise<DeviceRecord[]> {
    const { rows } = await this.pool.query<Row>('SELECT * FROM devices ORDER BY id');
    return rows.map(deviceFromRow);
  }

  async listCertificates(deviceId: string): Promise<CertificateRecord[]> {
    const { rows } = await this.pool.query<Row>('SELECT * FROM certificates WHERE subject = $1 ORDER BY issued_at, serial', [deviceId]);
    return rows.map(certificateFromRow);
  }

  async revokeDevice(deviceId: string, at: number, by: string): Promise<DeviceRevocation> {
    return this.tx(async (client) => {
      // Tokens first, in the order an enrollment locks (token row, then device row), so the two
      // never deadlock: an enrollment spending one of them commits first (its certificate is
      // then live below and revoked with the rest) or finds the token cancelled.
      const cancelled = await client.query('UPDATE tokens SET cancelled_at = $1 WHERE subject = $2 AND consumed_at IS NULL AND cancelled_at IS NULL', [at, deviceId]);
      const tokensCancelled = cancelled.rowCount ?? 0;
      if (tokensCancelled > 0) await client.query(INSERT_AUDIT, [at, by, 'revoke', deviceId, null, null]);
      await client.query('SELECT id FROM devices WHERE id = $1 FOR UPDATE', [deviceId]);
      const live = await client.query<Row>(
        'SELECT serial FROM certificates WHERE subject = $1 AND revoked_at IS NULL ORDER BY issued_at, serial FOR UPDATE',
        [deviceId],
      );
      const serials = live.rows.map((r) => String(r.serial));
      if (serials.length === 0) return { serials, tokensCancelled };
      await client.query('UPDATE certificates SET revoked_at = $1, revoked_by = $2 WHERE serial = ANY($3::text[])', [at, by, serials]);
      await client.query(
        `INSERT INTO audit (at, actor, action, subject, serial, not_after)
         SELECT $1, $2, 'revoke', $3, s, NULL FROM unnest($4::text[]) WITH ORDINALITY AS u(s, n) ORDER BY n`,
        [at, by, deviceId, serials],
      );
      // Every instance's CRL publisher polls this counter: the bump is how they learn of it.
      await client.query("UPDATE counters SET value = value + 1 WHERE name = 'revocations'");
      return { serials, tokensCancelled };
    });
  }

  async listRevoked(now: number): Promise<RevokedEntry[]> {
    const { rows } = await this.pool.query<Row>(
      'SELECT serial, revoked_at, revocation_reason FROM certificates WHERE revoked_at IS NOT NULL AND not_after > $1 ORDER BY revoked_at, serial',
      [now],
    );
    return rows.map(revokedFromRow);
  }

  async revocationVersion(): Promise<number> {
    const { rows } = await this.pool.query<Row>("SELECT value FROM counters WHERE name = 'revocations'");
    return Number(rows[0]?.value);
  }

  async nextCrlNumber(atLeast = 0n): Promise<bigint> {
    // One UPDATE: the row lock orders concurrent instances. int8 arrives as a decimal string.
    const { rows } = await this.pool.query<Row>(
      "UPDATE counters SET value = greatest(value + 1, $1::bigint) WHERE name = 'crl_number' RETURNING value::text AS n",
      [atLeast.toString()],
    );
    return BigInt(String(rows[0]?.n));
  }

  async listAudit(deviceId?: string): Promise<AuditEvent[]> {
    const { rows } =
      deviceId === undefined
        ? await this.pool.query<Row>('SELECT * FROM audit ORDER BY id')
        : await this.pool.query<Row>('SELECT * FROM audit WHERE subject = $1 ORDER BY id', [deviceId]);
    return rows.map(auditFromRow);
  }

  async countExpiring(now: number, before: number): Promise<number> {
    const { rows } = await this.pool.query<Row>(COUNT_EXPIRING, [now, before]);
    return Number(rows[0]?.n);
  }

  async fleetAudit(query: FleetAuditQuery): Promise<FleetAuditRows> {
    return fleetAuditWith(async (text, params) => (await this.pool.query<Row>(text, [...params])).rows, query);
  }

  async listDevicePage(q: DevicePageQuery): Promise<DeviceRecord[]> {
    const { text, params } = devicePageQuery(q);
    return (await this.pool.query<Row>(text, params)).rows.map(deviceFromRow);
  }

  async listCertificatesOf(ids: readonly string[]): Promise<CertificateListing[]> {
    if (ids.length === 0) return [];
    const { rows } = await this.pool.query<Row>(
      `SELECT ${LISTING_COLUMNS} FROM certificates WHERE subject = ANY($1::text[]) ORDER BY subject, issued_at, serial`,
      [ids],
    );
    return rows.map(listingFromRow);
  }

  async revokeCertificate(serial: string, at: number, by: string, reason: RevocationReason): Promise<CertificateRevocation> {
    return this.tx(async (client): Promise<CertificateRevocation> => {
      // The row lock orders this against a device revocation or another revocation of it.
      const found = (await client.query<Row>('SELECT * FROM certificates WHERE serial = $1 FOR UPDATE', [serial])).rows[0];
      if (!found) return { outcome: 'not_found' };
      if (found.revoked_at !== null) return { outcome: 'already', certificate: certificateFromRow(found) };
      const updated = await client.query<Row>(
        'UPDATE certificates SET revoked_at = $1, revoked_by = $2, revocation_reason = $3 WHERE serial = $4 RETURNING *',
        [at, by, reason, serial],
      );
      await client.query('INSERT INTO audit (at, actor, action, subject, serial, not_after, reason) VALUES ($1, $2, $3, $4, $5, $6, $7)', [
        at, by, 'revoke', found.subject, serial, null, reason,
      ]);
      await client.query("UPDATE counters SET value = value + 1 WHERE name = 'revocations'");
      return { outcome: 'revoked', certificate: certificateFromRow(updated.rows[0] as Row) };
    });
  }

  async listAuditPage(q: AuditPageQuery): Promise<AuditRecord[]> {
    const { text, params } = auditPageQuery(q);
    return (await this.pool.query<Row>(text, params)).rows.map(auditRecordFromRow);
  }

  async prune(cutoff: number, batch: number): Promise<PruneCount> {
    const certificates = await this.pool.query(`DELETE FROM certificates WHERE serial IN (${PRUNABLE_CERTIFICATES})`, [cutoff, batch]);
    const tokens = await this.pool.query(`DELETE FROM tokens WHERE hash IN (${PRUNABLE_TOKENS})`, [cutoff, batch]);
    return { certificates: certificates.rowCount ?? 0, tokens: tokens.rowCount ?? 0 };
  }

  outbox(): WebhookOutbox {
    return (this.webhookOutbox ??= new PostgresOutbox(this.pool));
  }

  async ping(): Promise<void> {
    await this.pool.query('SELECT 1');
  }

  async close(): Promise<void> {
    this.closing ??= this.pool.end();
    await this.closing;
  }
}

/**
 * Applies pending migrations in one transaction under a transaction-level advisory lock:
 * a second instance starting at the same moment waits on the lock, then finds the schema
 * current. DDL is transactional in PostgreSQL, so a failed migration leaves nothing behind.
 */
async function migrate(pool: pg.Pool): Promise<void> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    await client.query('SELECT pg_advisory_xact_lock($1::bigint)', [POSTGRES_MIGRATION_LOCK.toString()]);
    await client.query(
      `CREATE TABLE IF NOT EXISTS ${POSTGRES_MIGRATIONS_TABLE} (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)`,
    );
    const { rows } = await client.query<Row>(`SELECT coalesce(max(version), 0) AS v FROM ${POSTGRES_MIGRATIONS_TABLE}`);
    const current = Number(rows[0]?.v);
    if (current > POSTGRES_MIGRATIONS.length) {
      throw new Error(`database schema version ${current} is newer than this tlsfleet (${POSTGRES_MIGRATIONS.length}); upgrade tlsfleet`);
    }
    for (let v = current; v < POSTGRES_MIGRATIONS.length; v++) {
      await client.query(POSTGRES_MIGRATIONS[v] as string);
      await client.query(`INSERT INTO ${POSTGRES_MIGRATIONS_TABLE} (version, applied_at) VALUES ($1, $2)`, [v + 1, Date.now()]);
    }
    await client.query('COMMIT');
    client.release();
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    client.release(err instanceof Error ? err : new Error(String(err)));
    throw err;
  }
}
