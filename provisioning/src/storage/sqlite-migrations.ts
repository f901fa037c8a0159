import { SQLITE_OUTBOX_MIGRATION } from '../webhooks/outbox-migrations.js';

/**
 * Admin API at fleet scale (issue 20): per-certificate revocation reasons (RFC 5280 §5.3.1),
 * the reason in the audit trail, and the indexes retention's batched deletes walk. The same
 * text in both dialects: SQLite migration 3 and PostgreSQL migration 3.
 */
export const ADMIN_SCALE_MIGRATION = `ALTER TABLE certificates ADD COLUMN revocation_reason TEXT;
   ALTER TABLE audit ADD COLUMN reason TEXT;
   CREATE INDEX certificates_not_after ON certificates(not_after);
   CREATE INDEX tokens_expires_at ON tokens(expires_at);
   CREATE INDEX tokens_consumed_at ON tokens(consumed_at) WHERE consumed_at IS NOT NULL;
   CREATE INDEX tokens_cancelled_at ON tokens(cancelled_at) WHERE cancelled_at IS NOT NULL;`;

/** Versioned schema of the SQLite store: migration N brings `PRAGMA user_version` to N. */
export const SQLITE_MIGRATIONS: readonly string[] = [
  `CREATE TABLE tokens (
     hash TEXT PRIMARY KEY,
     subject TEXT NOT NULL,
     kind TEXT NOT NULL CHECK (kind IN ('device', 'service')),
     expires_at INTEGER NOT NULL,
     cert_ttl_seconds INTEGER NOT NULL,
     created_at INTEGER NOT NULL,
     created_by TEXT NOT NULL,
     consumed_at INTEGER,
     consumed_spki_hash TEXT,
     consumed_serial TEXT
   ) STRICT;
   CREATE TABLE devices (
     id TEXT PRIMARY KEY,
     kind TEXT NOT NULL CHECK (kind IN ('device', 'service')),
     created_at INTEGER NOT NULL,
     cert_ttl_seconds INTEGER NOT NULL
   ) STRICT;
   CREATE TABLE certificates (
     serial TEXT PRIMARY KEY,
     subject TEXT NOT NULL REFERENCES devices(id),
     kind TEXT NOT NULL,
     spki_hash TEXT NOT NULL,
     pem TEXT NOT NULL,
     not_before INTEGER NOT NULL,
     not_after INTEGER NOT NULL,
     issued_at INTEGER NOT NULL,
     issued_by TEXT NOT NULL,
     revoked_at INTEGER,
     revoked_by TEXT
   ) STRICT;
   CREATE INDEX certificates_subject ON certificates(subject);
   CREATE INDEX certificates_revoked ON certificates(revoked_at) WHERE revoked_at IS NOT NULL;
   CREATE TABLE audit (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     at INTEGER NOT NULL,
     actor TEXT NOT NULL,
     action TEXT NOT NULL,
     subject TEXT NOT NULL,
     serial TEXT,
     not_after INTEGER
   ) STRICT;
   CREATE INDEX audit_subject ON audit(subject);
   CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL) STRICT;
   INSERT INTO counters (name, value) VALUES ('crl_number', 0), ('revocations', 0);`,
  // Renewal lineage and token cancellation (issue 19): the device's current certificate (the
  // only one that may renew), each renewal's predecessor, and tokens cancelled by a revocation.
  // Existing devices get their newest certificate as current; existing renewals their
  // predecessor from issued_by ("renewal:<serial>").
  `ALTER TABLE devices ADD COLUMN current_serial TEXT;
   ALTER TABLE certificates ADD COLUMN renewed_from TEXT;
   ALTER TABLE tokens ADD COLUMN cancelled_at INTEGER;
   UPDATE certificates SET renewed_from = substr(issued_by, 9) WHERE issued_by LIKE 'renewal:%';
   CREATE INDEX certificates_renewed_from ON certificates(renewed_from) WHERE renewed_from IS NOT NULL;
   CREATE INDEX tokens_subject ON tokens(subject) WHERE consumed_at IS NULL AND cancelled_at IS NULL;
   UPDATE devices SET current_serial =
     (SELECT serial FROM certificates c WHERE c.subject = devices.id ORDER BY c.issued_at DESC, c.rowid DESC LIMIT 1);`,
  ADMIN_SCALE_MIGRATION,
  SQLITE_OUTBOX_MIGRATION,
  // The fleet audit (issue 22): which CA key signed each certificate (its AKI, lower-case
  // hex), so devices still on a retired intermediate are one indexed count. Certificates
  // issued before this have NULL: the audit counts them apart.
  `ALTER TABLE certificates ADD COLUMN issuer_key_id TEXT;
   CREATE INDEX certificates_issuer_key_id ON certificates(issuer_key_id);`,
];
