import { ADMIN_SCALE_MIGRATION } from './sqlite-migrations.js';
import { POSTGRES_OUTBOX_MIGRATION } from '../webhooks/outbox-migrations.js';

/**
 * Versioned schema of the PostgreSQL store: migration N, once applied, is row N of
 * `tlsfleet_schema_migrations`. Times are ms since the epoch in BIGINT (the driver answers
 * them as strings; the store parses them back to numbers); the CRL number is a sequence.
 * Append only: an applied migration is never edited.
 */
export const POSTGRES_MIGRATIONS: readonly string[] = [
  `CREATE TABLE tokens (
     hash TEXT PRIMARY KEY,
     subject TEXT NOT NULL,
     kind TEXT NOT NULL CHECK (kind IN ('device', 'service')),
     expires_at BIGINT NOT NULL,
     cert_ttl_seconds INTEGER NOT NULL,
     created_at BIGINT NOT NULL,
     created_by TEXT NOT NULL,
     consumed_at BIGINT,
     consumed_spki_hash TEXT,
     consumed_serial TEXT
   );
   CREATE TABLE devices (
     id TEXT PRIMARY KEY,
     kind TEXT NOT NULL CHECK (kind IN ('device', 'service')),
     created_at BIGINT NOT NULL,
     cert_ttl_seconds INTEGER NOT NULL
   );
   CREATE TABLE certificates (
     serial TEXT PRIMARY KEY,
     subject TEXT NOT NULL REFERENCES devices(id),
     kind TEXT NOT NULL,
     spki_hash TEXT NOT NULL,
     pem TEXT NOT NULL,
     not_before BIGINT NOT NULL,
     not_after BIGINT NOT NULL,
     issued_at BIGINT NOT NULL,
     issued_by TEXT NOT NULL,
     revoked_at BIGINT,
     revoked_by TEXT
   );
   CREATE INDEX certificates_subject ON certificates(subject);
   CREATE INDEX certificates_revoked ON certificates(revoked_at) WHERE revoked_at IS NOT NULL;
   CREATE TABLE audit (
     id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
     at BIGINT NOT NULL,
     actor TEXT NOT NULL,
     action TEXT NOT NULL,
     subject TEXT NOT NULL,
     serial TEXT,
     not_after BIGINT
   );
   CREATE INDEX audit_subject ON audit(subject);
   CREATE TABLE counters (name TEXT PRIMARY KEY, value BIGINT NOT NULL);
   INSERT INTO counters (name, value) VALUES ('revocations', 0);
   -- RFC 5280 §5.2.3: monotonically increasing; a sequence never hands one number out twice.
   CREATE SEQUENCE crl_number AS BIGINT START WITH 1;`,
  // Renewal lineage and token cancellation (issue 19); see the SQLite migration 2.
  `ALTER TABLE devices ADD COLUMN current_serial TEXT;
   ALTER TABLE certificates ADD COLUMN renewed_from TEXT;
   ALTER TABLE tokens ADD COLUMN cancelled_at BIGINT;
   UPDATE certificates SET renewed_from = substr(issued_by, 9) WHERE issued_by LIKE 'renewal:%';
   CREATE INDEX certificates_renewed_from ON certificates(renewed_from) WHERE renewed_from IS NOT NULL;
   CREATE INDEX tokens_subject ON tokens(subject) WHERE consumed_at IS NULL AND cancelled_at IS NULL;
   UPDATE devices d SET current_serial =
     (SELECT serial FROM certificates c WHERE c.subject = d.id ORDER BY c.issued_at DESC, c.serial DESC LIMIT 1);`,
  ADMIN_SCALE_MIGRATION,
  // The CRL number moves from a sequence to a counter row, so one UPDATE can raise it to at
  // least the issuing time (a restored store must not number CRLs below what brokers hold).
  `INSERT INTO counters (name, value)
     SELECT 'crl_number', CASE WHEN is_called THEN last_value ELSE last_value - 1 END FROM crl_number;
   DROP SEQUENCE crl_number;`,
  POSTGRES_OUTBOX_MIGRATION,
  // The fleet audit (issue 22): which CA key signed each certificate (its AKI, lower-case
  // hex), so devices still on a retired intermediate are one indexed count. Certificates
  // issued before this have NULL: the audit counts them apart.
  `ALTER TABLE certificates ADD COLUMN issuer_key_id TEXT;
   CREATE INDEX certificates_issuer_key_id ON certificates(issuer_key_id);`,
];

/** Where applied versions are recorded; created by the first start, outside the numbered list. */
export const POSTGRES_MIGRATIONS_TABLE = 'tlsfleet_schema_migrations';

/**
 * Key of the transaction-level advisory lock every starting instance takes before it reads
 * the schema version, so two instances starting together apply each migration once.
 * Any fixed 64-bit number unlikely to collide with another application's: "tlsfleet" in ASCII.
 */
export const POSTGRES_MIGRATION_LOCK = 0x746c73666c656574n;
