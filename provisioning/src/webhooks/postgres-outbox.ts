import type pg from 'pg';
import type { Row } from '../storage/store-rows.js';
import { CLAIMABLE, LISTINGS, PRUNE_DELIVERED, PRUNE_EVENTS } from './outbox-migrations.js';
import type { ClaimedDelivery, DeliveryRecord, DeliveryStatus, WebhookOutbox } from './outbox.js';
import { DELIVERY_COLUMNS, deliveryFromRow, eventFromRow, shortError } from './outbox-rows.js';

/** Key of the advisory lock that makes fan-out one at a time across instances ("tlsfwhon" in ASCII; not the migration lock). */
const FAN_OUT_LOCK = 0x746c736677686f6en;

/**
 * The outbox in PostgreSQL, shared by several instances. Fan-out runs under an advisory
 * lock (one instance at a time, so deliveries of one device appear in event order); a claim
 * is one UPDATE over rows picked with FOR UPDATE SKIP LOCKED, so two instances never lease
 * the same delivery.
 */
export class PostgresOutbox implements WebhookOutbox {
  constructor(private readonly pool: pg.Pool) {}

  async fanOut(endpoints: readonly string[], now: number, limit: number): Promise<number> {
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      const locked = await client.query<Row>('SELECT pg_try_advisory_xact_lock($1::bigint) AS ok', [FAN_OUT_LOCK.toString()]);
      if (locked.rows[0]?.ok !== true) {
        await client.query('COMMIT');
        client.release();
        return 0;
      }
      const { rowCount } = await client.query(
        `WITH e AS (SELECT seq, device FROM webhook_events WHERE fanned_at IS NULL ORDER BY seq LIMIT $3),
              ins AS (INSERT INTO webhook_deliveries (event_seq, endpoint, device, next_at)
                      SELECT e.seq, u.endpoint, e.device, $2 FROM e CROSS JOIN unnest($1::text[]) AS u(endpoint)
                      ON CONFLICT DO NOTHING)
         UPDATE webhook_events w SET fanned_at = $2 FROM e WHERE w.seq = e.seq`,
        [[...endpoints], now, limit],
      );
      await client.query('COMMIT');
      client.release();
      return rowCount ?? 0;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      client.release(err instanceof Error ? err : new Error(String(err)));
      throw err;
    }
  }

  async claim(owner: string, now: number, leaseUntil: number, limit: number): Promise<ClaimedDelivery[]> {
    const { rows } = await this.pool.query<Row>(
      `WITH picked AS (SELECT d.event_seq, d.endpoint FROM webhook_deliveries d WHERE ${CLAIMABLE}
                       ORDER BY d.event_seq LIMIT $2 FOR UPDATE SKIP LOCKED),
            leased AS (UPDATE webhook_deliveries d SET lease_owner = $3, lease_until = $4 FROM picked
                       WHERE d.event_seq = picked.event_seq AND d.endpoint = picked.endpoint
                       RETURNING d.*)
       SELECT ${DELIVERY_COLUMNS.replace(/\bd\./g, 'l.')} FROM leased l JOIN webhook_events e ON e.seq = l.event_seq ORDER BY l.event_seq`,
      [now, limit, owner, leaseUntil],
    );
    return rows.map((r) => ({ event: eventFromRow(r), endpoint: String(r.endpoint), attempts: Number(r.attempts) + 1 }));
  }

  async delivered(seq: number, endpoint: string, owner: string, now: number): Promise<void> {
    await this.pool.query(
      `UPDATE webhook_deliveries SET delivered_at = $1, attempts = attempts + 1, last_attempt_at = $1, last_status = NULL, last_error = NULL, lease_owner = NULL, lease_until = NULL
       WHERE event_seq = $2 AND endpoint = $3 AND lease_owner = $4 AND delivered_at IS NULL`,
      [now, seq, endpoint, owner],
    );
  }

  async failed(seq: number, endpoint: string, owner: string, now: number, nextAt: number, status: number | undefined, error: string): Promise<void> {
    await this.pool.query(
      `UPDATE webhook_deliveries SET attempts = attempts + 1, next_at = $1, last_attempt_at = $2, last_status = $3, last_error = $4, lease_owner = NULL, lease_until = NULL
       WHERE event_seq = $5 AND endpoint = $6 AND lease_owner = $7 AND delivered_at IS NULL`,
      [nextAt, now, status ?? null, shortError(error), seq, endpoint, owner],
    );
  }

  async list(status: DeliveryStatus, limit: number): Promise<DeliveryRecord[]> {
    const { rows } = await this.pool.query<Row>(
      `SELECT ${DELIVERY_COLUMNS} FROM webhook_deliveries d JOIN webhook_events e ON e.seq = d.event_seq WHERE ${LISTINGS[status]} LIMIT $1`,
      [limit],
    );
    return rows.map(deliveryFromRow);
  }

  async prune(cutoff: number, batch: number): Promise<number> {
    let n = 0;
    for (const text of [PRUNE_DELIVERED, PRUNE_EVENTS]) n += (await this.pool.query(text, [cutoff, batch])).rowCount ?? 0;
    return n;
  }

  async backlog(): Promise<{ pending: number; failing: number }> {
    const { rows } = await this.pool.query<Row>(
      'SELECT count(*) AS pending, count(*) FILTER (WHERE attempts > 0) AS failing FROM webhook_deliveries WHERE delivered_at IS NULL',
    );
    return { pending: Number(rows[0]?.pending ?? 0), failing: Number(rows[0]?.failing ?? 0) };
  }
}
