import type Database from 'better-sqlite3';
import { forSqlite } from '../storage/admin-queries.js';
import type { Row } from '../storage/store-rows.js';
import { CLAIMABLE, LISTINGS, PRUNE_DELIVERED, PRUNE_EVENTS } from './outbox-migrations.js';
import type { ClaimedDelivery, DeliveryRecord, DeliveryStatus, WebhookOutbox } from './outbox.js';
import { DELIVERY_COLUMNS, deliveryFromRow, eventFromRow, shortError } from './outbox-rows.js';

/** The outbox in the SQLite store: each method one immediate transaction, so instances sharing the file take turns. */
export class SqliteOutbox implements WebhookOutbox {
  constructor(private readonly db: Database.Database) {}

  async fanOut(endpoints: readonly string[], now: number, limit: number): Promise<number> {
    return this.db.transaction(() => {
      const events = this.db.prepare('SELECT seq, device FROM webhook_events WHERE fanned_at IS NULL ORDER BY seq LIMIT ?').all(limit) as Row[];
      const insert = this.db.prepare('INSERT OR IGNORE INTO webhook_deliveries (event_seq, endpoint, device, next_at) VALUES (?, ?, ?, ?)');
      const mark = this.db.prepare('UPDATE webhook_events SET fanned_at = ? WHERE seq = ?');
      for (const e of events) {
        for (const endpoint of endpoints) insert.run(e.seq, endpoint, e.device, now);
        mark.run(now, e.seq);
      }
      return events.length;
    }).immediate();
  }

  async claim(owner: string, now: number, leaseUntil: number, limit: number): Promise<ClaimedDelivery[]> {
    return this.db.transaction(() => {
      const due = forSqlite({ text: `SELECT d.event_seq, d.endpoint FROM webhook_deliveries d WHERE ${CLAIMABLE} ORDER BY d.event_seq LIMIT $2`, params: [now, limit] });
      const rows = this.db.prepare(due.text).all(...due.params) as Row[];
      const lease = this.db.prepare('UPDATE webhook_deliveries SET lease_owner = ?, lease_until = ? WHERE event_seq = ? AND endpoint = ?');
      const read = this.db.prepare(`SELECT ${DELIVERY_COLUMNS} FROM webhook_deliveries d JOIN webhook_events e ON e.seq = d.event_seq WHERE d.event_seq = ? AND d.endpoint = ?`);
      return rows.map((r) => {
        lease.run(owner, leaseUntil, r.event_seq, r.endpoint);
        const full = read.get(r.event_seq, r.endpoint) as Row;
        return { event: eventFromRow(full), endpoint: String(full.endpoint), attempts: Number(full.attempts) + 1 };
      });
    }).immediate();
  }

  async delivered(seq: number, endpoint: string, owner: string, now: number): Promise<void> {
    this.db
      .prepare(
        `UPDATE webhook_deliveries SET delivered_at = ?, attempts = attempts + 1, last_attempt_at = ?, last_status = NULL, last_error = NULL, lease_owner = NULL, lease_until = NULL
         WHERE event_seq = ? AND endpoint = ? AND lease_owner = ? AND delivered_at IS NULL`,
      )
      .run(now, now, seq, endpoint, owner);
  }

  async failed(seq: number, endpoint: string, owner: string, now: number, nextAt: number, status: number | undefined, error: string): Promise<void> {
    this.db
      .prepare(
        `UPDATE webhook_deliveries SET attempts = attempts + 1, next_at = ?, last_attempt_at = ?, last_status = ?, last_error = ?, lease_owner = NULL, lease_until = NULL
         WHERE event_seq = ? AND endpoint = ? AND lease_owner = ? AND delivered_at IS NULL`,
      )
      .run(nextAt, now, status ?? null, shortError(error), seq, endpoint, owner);
  }

  async list(status: DeliveryStatus, limit: number): Promise<DeliveryRecord[]> {
    const rows = this.db.prepare(`SELECT ${DELIVERY_COLUMNS} FROM webhook_deliveries d JOIN webhook_events e ON e.seq = d.event_seq WHERE ${LISTINGS[status]} LIMIT ?`).all(limit) as Row[];
    return rows.map(deliveryFromRow);
  }

  async prune(cutoff: number, batch: number): Promise<number> {
    return this.db.transaction(() =>
      [PRUNE_DELIVERED, PRUNE_EVENTS].reduce((n, text) => {
        const q = forSqlite({ text, params: [cutoff, batch] });
        return n + this.db.prepare(q.text).run(...q.params).changes;
      }, 0),
    ).immediate();
  }

  async backlog(): Promise<{ pending: number; failing: number }> {
    const r = this.db
      .prepare('SELECT count(*) AS pending, coalesce(sum(CASE WHEN attempts > 0 THEN 1 ELSE 0 END), 0) AS failing FROM webhook_deliveries WHERE delivered_at IS NULL')
      .get() as Row;
    return { pending: Number(r.pending), failing: Number(r.failing) };
  }
}
