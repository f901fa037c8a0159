import Database from 'better-sqlite3';
import type {
  AuditEvent, AuditPageQuery, AuditRecord, CertificateListing, CertificateRecord, CertificateRevocation, DevicePageQuery, DeviceRecord,
  DeviceRevocation, Enrollment, NewToken, PruneCount, RenewalOutcome, RevocationReason, RevokedEntry, Store, TokenRecord,
} from './store.js';
import { auditPageQuery, devicePageQuery, forSqlite, LISTING_COLUMNS, PRUNABLE_CERTIFICATES, PRUNABLE_TOKENS, type Query } from './admin-queries.js';
import { createPrivateFile } from './private-file.js';
import { kindClash } from './kind-clash.js';
import { SQLITE_MIGRATIONS } from './sqlite-migrations.js';
import { SqliteOutbox } from '../webhooks/sqlite-outbox.js';
import type { WebhookOutbox } from '../webhooks/outbox.js';
import { COUNT_EXPIRING } from './expiring-query.js';
import { fleetAuditWith, type FleetAuditQuery, type FleetAuditRows } from './fleet-audit-queries.js';
import { auditFromRow, auditRecordFromRow, certificateFromRow, deviceFromRow, listingFromRow, revokedFromRow, tokenFromRow, type Row } from './store-rows.js';

/**
 * The embedded store: one SQLite file in the data dir, WAL so the CLI (`tlsfleet token`,
 * `tlsfleet revoke`) and the running service share it safely. better-sqlite3 is synchronous;
 * each method is one transaction, so no other request interleaves inside it.
 */
export class SqliteStore implements Store {
  private readonly db: Database.Database;
  private readonly stmt;
  private readonly prepared = new Map<string, Database.Statement>();
  private webhookOutbox: SqliteOutbox | undefined;

  private constructor(db: Database.Database) {
    this.db = db;
    this.stmt = {
      insertToken: db.prepare(
        `INSERT INTO tokens (hash, subject, kind, expires_at, cert_ttl_seconds, created_at, created_by)
         VALUES (@hash, @subject, @kind, @expiresAt, @certTtlSeconds, @createdAt, @createdBy)`,
      ),
      findToken: db.prepare('SELECT * FROM tokens WHERE hash = ?'),
      spendToken: db.prepare(
        `UPDATE tokens SET consumed_at = ?, consumed_spki_hash = ?, consumed_serial = ?
         WHERE hash = ? AND consumed_at IS NULL AND cancelled_at IS NULL`,
      ),
      upsertDevice: db.prepare(
        // The kind check is part of the upsert: a name enrolled as the other kind changes nothing.
        `INSERT INTO devices (id, kind, created_at, cert_ttl_seconds, current_serial)
         VALUES (@id, @kind, @createdAt, @certTtlSeconds, @currentSerial)
         ON CONFLICT (id) DO UPDATE SET cert_ttl_seconds = excluded.cert_ttl_seconds, current_serial = excluded.current_serial
         WHERE devices.kind = excluded.kind`,
      ),
      advanceLineage: db.prepare('UPDATE devices SET current_serial = ? WHERE id = ? AND current_serial = ?'),
      insertRenewal: db.prepare(
        `INSERT INTO certificates (serial, subject, kind, spki_hash, pem, not_before, not_after, issued_at, issued_by, renewed_from, issuer_key_id)
         VALUES (@serial, @subject, @kind, @spkiHash, @pem, @notBefore, @notAfter, @issuedAt, @issuedBy, @renewedFrom, @issuerKeyId)`,
      ),
      findRenewalsOf: db.prepare('SELECT * FROM certificates WHERE renewed_from = ? ORDER BY issued_at, serial'),
      cancelTokens: db.prepare('UPDATE tokens SET cancelled_at = ? WHERE subject = ? AND consumed_at IS NULL AND cancelled_at IS NULL'),
      insertCertificate: db.prepare(
        `INSERT INTO certificates (serial, subject, kind, spki_hash, pem, not_before, not_after, issued_at, issued_by, issuer_key_id)
         VALUES (@serial, @subject, @kind, @spkiHash, @pem, @notBefore, @notAfter, @issuedAt, @issuedBy, @issuerKeyId)`,
      ),
      insertAudit: db.prepare(
        'INSERT INTO audit (at, actor, action, subject, serial, not_after) VALUES (?, ?, ?, ?, ?, ?)',
      ),
      findCertificate: db.prepare('SELECT * FROM certificates WHERE serial = ?'),
      findDevice: db.prepare('SELECT * FROM devices WHERE id = ?'),
      listDevices: db.prepare('SELECT * FROM devices ORDER BY id'),
      listCertificates: db.prepare('SELECT * FROM certificates WHERE subject = ? ORDER BY issued_at, serial'),
      liveSerials: db.prepare('SELECT serial FROM certificates WHERE subject = ? AND revoked_at IS NULL'),
      revoke: db.prepare('UPDATE certificates SET revoked_at = ?, revoked_by = ? WHERE serial = ? AND revoked_at IS NULL'),
      isRevoked: db.prepare('SELECT revoked_at FROM certificates WHERE serial = ?'),
      listRevoked: db.prepare('SELECT serial, revoked_at, revocation_reason FROM certificates WHERE revoked_at IS NOT NULL AND not_after > ? ORDER BY revoked_at'),
      revokeOne: db.prepare('UPDATE certificates SET revoked_at = ?, revoked_by = ?, revocation_reason = ? WHERE serial = ? AND revoked_at IS NULL'),
      insertAuditReason: db.prepare('INSERT INTO audit (at, actor, action, subject, serial, not_after, reason) VALUES (?, ?, ?, ?, ?, ?, ?)'),
      pruneCertificates: db.prepare(`DELETE FROM certificates WHERE serial IN (${forSqlite({ text: PRUNABLE_CERTIFICATES, params: [] }).text})`),
      pruneTokens: db.prepare(`DELETE FROM tokens WHERE hash IN (${forSqlite({ text: PRUNABLE_TOKENS, params: [] }).text})`),
      counter: db.prepare('SELECT value FROM counters WHERE name = ?'),
      bump: db.prepare('UPDATE counters SET value = value + 1 WHERE name = ? RETURNING value'),
      bumpAtLeast: db.prepare('UPDATE counters SET value = max(value + 1, ?) WHERE name = ? RETURNING value'),
      listAudit: db.prepare('SELECT * FROM audit ORDER BY id'),
      listAuditFor: db.prepare('SELECT * FROM audit WHERE subject = ? ORDER BY id'),
    };
  }

  /** Opens (creating if needed) the database file and applies pending migrations. */
  static open(file: string): SqliteStore {
    // Created owner-only before SQLite opens it: SQLite gives its -wal and -shm files the
    // database's mode, and the data dir may be an existing 0755 folder.
    createPrivateFile(file);
    const db = new Database(file);
    db.pragma('journal_mode = WAL');
    // NORMAL is durable across process crashes in WAL mode; only an OS crash may lose the last commits.
    db.pragma('synchronous = NORMAL');
    db.pragma('foreign_keys = ON');
    // Another process (the CLI) may hold the write lock briefly.
    db.pragma('busy_timeout = 5000');
    migrate(db);
    return new SqliteStore(db);
  }

  async createToken(token: NewToken): Promise<void> {
    this.db.transaction(() => {
      this.stmt.insertToken.run(token);
      this.stmt.insertAudit.run(token.createdAt, token.createdBy, 'token', token.subject, null, null);
    })();
  }

  async findToken(hash: string): Promise<TokenRecord | undefined> {
    const r = this.stmt.findToken.get(hash) as Row | undefined;
    return r && tokenFromRow(r);
  }

  async recordEnrollment(e: Enrollment): Promise<boolean> {
    return this.db.transaction(() => {
      const c = e.certificate;
      const spent = this.stmt.spendToken.run(c.issuedAt, e.spkiHash, c.serial, e.tokenHash);
      if (spent.changes !== 1) return false;
      const device = this.stmt.upsertDevice.run({ ...e.device, currentSerial: c.serial });
      if (device.changes !== 1) throw kindClash(e.device.id, e.device.kind);
      this.stmt.insertCertificate.run({ ...c, issuerKeyId: c.issuerKeyId ?? null });
      this.stmt.insertAudit.run(c.issuedAt, c.issuedBy, 'issue', c.subject, c.serial, c.notAfter);
      return true;
    }).immediate();
  }

  async recordRenewal(c: Enrollment['certificate'], presentedSerial: string): Promise<RenewalOutcome> {
    return this.db.transaction((): RenewalOutcome => {
      const presented = this.stmt.isRevoked.get(presentedSerial) as Row | undefined;
      if (!presented || presented.revoked_at !== null) return 'revoked';
      if (this.stmt.advanceLineage.run(c.serial, c.subject, presentedSerial).changes !== 1) return 'superseded';
      this.stmt.insertRenewal.run({ ...c, issuerKeyId: c.issuerKeyId ?? null, renewedFrom: presentedSerial });
      this.stmt.insertAudit.run(c.issuedAt, c.issuedBy, 'renew', c.subject, c.serial, c.notAfter);
      return 'recorded';
    }).immediate();
  }

  async findRenewalsOf(serial: string): Promise<CertificateRecord[]> {
    return (this.stmt.findRenewalsOf.all(serial) as Row[]).map(certificateFromRow);
  }

  async findCertificate(serial: string): Promise<CertificateRecord | undefined> {
    const r = this.stmt.findCertificate.get(serial) as Row | undefined;
    return r && certificateFromRow(r);
  }

  async findDevice(id: string): Promise<DeviceRecord | undefined> {
    const r = this.stmt.findDevice.get(id) as Row | undefined;
    return r && deviceFromRow(r);
  }

  async listDevices(): Promise<DeviceRecord[]> {
    return (this.stmt.listDevices.all() as Row[]).map(deviceFromRow);
  }

  async listCertificates(deviceId: string): Promise<CertificateRecord[]> {
    return (this.stmt.listCertificates.all(deviceId) as Row[]).map(certificateFromRow);
  }

  async revokeDevice(deviceId: string, at: number, by: string): Promise<DeviceRevocation> {
    return this.db.transaction(() => {
      const tokensCancelled = this.stmt.cancelTokens.run(at, deviceId).changes;
      if (tokensCancelled > 0) this.stmt.insertAudit.run(at, by, 'revoke', deviceId, null, null);
      const serials = (this.stmt.liveSerials.all(deviceId) as Row[]).map((r) => String(r.serial));
      for (const serial of serials) {
        this.stmt.revoke.run(at, by, serial);
        this.stmt.insertAudit.run(at, by, 'revoke', deviceId, serial, null);
      }
      if (serials.length > 0) this.stmt.bump.get('revocations');
      return { serials, tokensCancelled };
    }).immediate();
  }

  async listRevoked(now: number): Promise<RevokedEntry[]> {
    return (this.stmt.listRevoked.all(now) as Row[]).map(revokedFromRow);
  }

  async revocationVersion(): Promise<number> {
    return Number((this.stmt.counter.get('revocations') as Row).value);
  }

  async nextCrlNumber(atLeast = 0n): Promise<bigint> {
    return BigInt(Number((this.stmt.bumpAtLeast.get(atLeast, 'crl_number') as Row).value));
  }

  async listAudit(deviceId?: string): Promise<AuditEvent[]> {
    const rows = (deviceId === undefined ? this.stmt.listAudit.all() : this.stmt.listAuditFor.all(deviceId)) as Row[];
    return rows.map(auditFromRow);
  }

  async listDevicePage(q: DevicePageQuery): Promise<DeviceRecord[]> {
    return (this.run(devicePageQuery(q)) as Row[]).map(deviceFromRow);
  }

  async listCertificatesOf(ids: readonly string[]): Promise<CertificateListing[]> {
    if (ids.length === 0) return [];
    const sql = `SELECT ${LISTING_COLUMNS} FROM certificates WHERE subject IN (${ids.map(() => '?').join(', ')}) ORDER BY subject, issued_at, serial`;
    return (this.db.prepare(sql).all(...ids) as Row[]).map(listingFromRow);
  }

  async revokeCertificate(serial: string, at: number, by: string, reason: RevocationReason): Promise<CertificateRevocation> {
    return this.db.transaction((): CertificateRevocation => {
      const found = this.stmt.findCertificate.get(serial) as Row | undefined;
      if (!found) return { outcome: 'not_found' };
      if (found.revoked_at !== null) return { outcome: 'already', certificate: certificateFromRow(found) };
      this.stmt.revokeOne.run(at, by, reason, serial);
      this.stmt.insertAuditReason.run(at, by, 'revoke', found.subject, serial, null, reason);
      this.stmt.bump.get('revocations');
      return { outcome: 'revoked', certificate: certificateFromRow(this.stmt.findCertificate.get(serial) as Row) };
    }).immediate();
  }

  async listAuditPage(q: AuditPageQuery): Promise<AuditRecord[]> {
    return (this.run(auditPageQuery(q)) as Row[]).map(auditRecordFromRow);
  }

  async prune(cutoff: number, batch: number): Promise<PruneCount> {
    return this.db.transaction(() => ({
      certificates: this.stmt.pruneCertificates.run(cutoff, batch).changes,
      tokens: this.stmt.pruneTokens.run(cutoff, cutoff, cutoff, batch).changes,
    })).immediate();
  }

  /** Runs a shared `$n` query, preparing each of its few shapes (filters used or not) once. */
  private run(q: Query): unknown[] {
    const { text, params } = forSqlite(q);
    let statement = this.prepared.get(text);
    if (!statement) this.prepared.set(text, (statement = this.db.prepare(text)));
    return statement.all(...params);
  }

  async countExpiring(now: number, before: number): Promise<number> {
    return Number((this.db.prepare(COUNT_EXPIRING.replace(/\$\d/g, '?')).get(now, before) as Row).n);
  }

  async fleetAudit(query: FleetAuditQuery): Promise<FleetAuditRows> {
    return fleetAuditWith(async (text, params) => this.run({ text, params: [...params] }) as Record<string, unknown>[], query);
  }

  outbox(): WebhookOutbox {
    return (this.webhookOutbox ??= new SqliteOutbox(this.db));
  }

  async ping(): Promise<void> {
    this.db.prepare('SELECT 1').get();
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }
}

function migrate(db: Database.Database): void {
  // The version is read under the same write lock that applies the migrations: another
  // process opening the same fresh data dir (a CLI command beside the service) may be
  // migrating it at this moment, and reading it outside made both run migration 1.
  db.transaction(() => {
    const current = Number(db.pragma('user_version', { simple: true }));
    if (current > SQLITE_MIGRATIONS.length) {
      throw new Error(`database schema version ${current} is newer than this tlsfleet (${SQLITE_MIGRATIONS.length}); upgrade tlsfleet`);
    }
    for (let v = current; v < SQLITE_MIGRATIONS.length; v++) {
      db.exec(SQLITE_MIGRATIONS[v] as string);
      db.pragma(`user_version = ${v + 1}`);
    }
  }).immediate();
}
