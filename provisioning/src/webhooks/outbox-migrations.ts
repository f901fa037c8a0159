/**
 * The webhook outbox (issue 22): SQLite migration 4. A trigger on the audit record writes an
 * event for each issuance, renewal and revocation of a certificate, inside the transaction
 * that records it, whatever writes it (the service, `tlsfleet revoke` against the data dir).
 * Earlier audit rows make no events.
 */
export const SQLITE_OUTBOX_MIGRATION = `CREATE TABLE webhook_events (
     seq INTEGER PRIMARY KEY AUTOINCREMENT,
     id TEXT NOT NULL UNIQUE,
     type TEXT NOT NULL,
     device TEXT NOT NULL,
     serial TEXT NOT NULL,
     not_after INTEGER,
     at INTEGER NOT NULL,
     fanned_at INTEGER
   ) STRICT;
   CREATE INDEX webhook_events_unfanned ON webhook_events(seq) WHERE fanned_at IS NULL;
   CREATE TRIGGER audit_webhook_event AFTER INSERT ON audit
     WHEN NEW.serial IS NOT NULL AND NEW.action IN ('issue', 'renew', 'revoke')
   BEGIN
     INSERT INTO webhook_events (id, type, device, serial, not_after, at) VALUES (
       lower(hex(randomblob(16))),
       CASE NEW.action WHEN 'issue' THEN 'enrolled' WHEN 'renew' THEN 'renewed' ELSE 'revoked' END,
       NEW.subject, NEW.serial, CASE WHEN NEW.action = 'revoke' THEN NULL ELSE NEW.not_after END, NEW.at);
   END;
   CREATE TABLE webhook_deliveries (
     event_seq INTEGER NOT NULL REFERENCES webhook_events(seq),
     endpoint TEXT NOT NULL,
     device TEXT NOT NULL,
     attempts INTEGER NOT NULL DEFAULT 0,
     next_at INTEGER NOT NULL,
     lease_owner TEXT,
     lease_until INTEGER,
     delivered_at INTEGER,
     last_attempt_at INTEGER,
     last_status INTEGER,
     last_error TEXT,
     PRIMARY KEY (event_seq, endpoint)
   ) STRICT;
   CREATE INDEX webhook_deliveries_undelivered ON webhook_deliveries(endpoint, device, event_seq) WHERE delivered_at IS NULL;
   CREATE INDEX webhook_deliveries_delivered ON webhook_deliveries(delivered_at) WHERE delivered_at IS NOT NULL;`;

/**
 * PostgreSQL migration 5, the same outbox. The trigger takes a transaction-level advisory
 * lock per device before it numbers the event, so two transactions changing one device number
 * their events in commit order: delivery in event order is delivery in the order of the changes.
 */
export const POSTGRES_OUTBOX_MIGRATION = `CREATE TABLE webhook_events (
     seq BIGSERIAL PRIMARY KEY,
     id TEXT NOT NULL UNIQUE,
     type TEXT NOT NULL,
     device TEXT NOT NULL,
     serial TEXT NOT NULL,
     not_after BIGINT,
     at BIGINT NOT NULL,
     fanned_at BIGINT
   );
   CREATE INDEX webhook_events_unfanned ON webhook_events(seq) WHERE fanned_at IS NULL;
   CREATE FUNCTION tlsfleet_webhook_event() RETURNS trigger LANGUAGE plpgsql AS $fn$
   BEGIN
     IF NEW.serial IS NULL OR NEW.action NOT IN ('issue', 'renew', 'revoke') THEN RETURN NEW; END IF;
     PERFORM pg_advisory_xact_lock(hashtext('tlsfleet-webhook:' || NEW.subject)::bigint);
     INSERT INTO webhook_events (id, type, device, serial, not_after, at) VALUES (
       md5(random()::text || clock_timestamp()::text || NEW.serial),
       CASE NEW.action WHEN 'issue' THEN 'enrolled' WHEN 'renew' THEN 'renewed' ELSE 'revoked' END,
       NEW.subject, NEW.serial, CASE WHEN NEW.action = 'revoke' THEN NULL ELSE NEW.not_after END, NEW.at);
     RETURN NEW;
   END
   $fn$;
   CREATE TRIGGER audit_webhook_event AFTER INSERT ON audit FOR EACH ROW EXECUTE FUNCTION tlsfleet_webhook_event();
   CREATE TABLE webhook_deliveries (
     event_seq BIGINT NOT NULL REFERENCES webhook_events(seq),
     endpoint TEXT NOT NULL,
     device TEXT NOT NULL,
     attempts INTEGER NOT NULL DEFAULT 0,
     next_at BIGINT NOT NULL,
     lease_owner TEXT,
     lease_until BIGINT,
     delivered_at BIGINT,
     last_attempt_at BIGINT,
     last_status INTEGER,
     last_error TEXT,
     PRIMARY KEY (event_seq, endpoint)
   );
   CREATE INDEX webhook_deliveries_undelivered ON webhook_deliveries(endpoint, device, event_seq) WHERE delivered_at IS NULL;
   CREATE INDEX webhook_deliveries_delivered ON webhook_deliveries(delivered_at) WHERE delivered_at IS NOT NULL;`;

/** The claim's condition, both dialects: due, not leased, and the oldest undelivered of its (endpoint, device). */
export const CLAIMABLE = `d.delivered_at IS NULL AND d.next_at <= $1 AND (d.lease_until IS NULL OR d.lease_until < $1)
  AND NOT EXISTS (SELECT 1 FROM webhook_deliveries p
                  WHERE p.endpoint = d.endpoint AND p.device = d.device AND p.delivered_at IS NULL AND p.event_seq < d.event_seq)`;

/** Filter and order of each listing of GET /v1/webhooks/deliveries. */
export const LISTINGS = {
  pending: 'd.delivered_at IS NULL AND d.attempts = 0 ORDER BY d.event_seq, d.endpoint',
  failing: 'd.delivered_at IS NULL AND d.attempts > 0 ORDER BY d.event_seq, d.endpoint',
  delivered: 'd.delivered_at IS NOT NULL ORDER BY d.delivered_at DESC, d.event_seq DESC',
} as const;

/** Retention of the outbox, both dialects (`$1` cutoff, `$2` batch): delivered deliveries, then events none waits for. */
export const PRUNE_DELIVERED = `DELETE FROM webhook_deliveries WHERE (event_seq, endpoint) IN
  (SELECT event_seq, endpoint FROM webhook_deliveries WHERE delivered_at IS NOT NULL AND delivered_at < $1 LIMIT $2)`;
export const PRUNE_EVENTS = `DELETE FROM webhook_events WHERE seq IN
  (SELECT e.seq FROM webhook_events e WHERE e.fanned_at IS NOT NULL AND e.at < $1
     AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event_seq = e.seq) LIMIT $2)`;
