/** The webhook event types: an enrollment, a renewal, a revocation of one certificate. */
export type WebhookEventType = 'enrolled' | 'renewed' | 'revoked';

/** One event of the outbox, written in the transaction that recorded what it tells. */
export interface OutboxEvent {
  /** Store order; per device it is the order of the recorded changes. */
  readonly seq: number;
  /** Random event id, the same on every retry: receivers deduplicate on it. */
  readonly id: string;
  readonly type: WebhookEventType;
  readonly device: string;
  readonly serial: string;
  readonly notAfter: number | undefined;
  readonly at: number;
}

/** One event to one receiver, claimed under a lease by one instance. */
export interface ClaimedDelivery {
  readonly event: OutboxEvent;
  readonly endpoint: string;
  /** Attempts including this one. */
  readonly attempts: number;
}

export type DeliveryStatus = 'pending' | 'failing' | 'delivered';

/** The state of one delivery, as the admin API shows it. */
export interface DeliveryRecord {
  readonly event: OutboxEvent;
  readonly endpoint: string;
  readonly attempts: number;
  readonly nextAttemptAt: number | undefined;
  readonly deliveredAt: number | undefined;
  readonly lastAttemptAt: number | undefined;
  readonly lastStatus: number | undefined;
  readonly lastError: string | undefined;
}

/**
 * The outbox of webhook events. Events are written by the store itself (a trigger on the
 * audit record), so they commit or roll back with the issuance or revocation they tell.
 */
export interface WebhookOutbox {
  /**
   * Gives up to `limit` events not yet handed out one delivery per endpoint (none with no
   * endpoints: the events are then dropped, as no receiver is configured). One at a time
   * across instances. Returns how many events it handled.
   */
  fanOut(endpoints: readonly string[], now: number, limit: number): Promise<number>;
  /**
   * Leases up to `limit` due deliveries to `owner` until `leaseUntil`, only the oldest
   * undelivered one of each (endpoint, device), never one another live lease holds.
   */
  claim(owner: string, now: number, leaseUntil: number, limit: number): Promise<ClaimedDelivery[]>;
  /** Marks a claimed delivery done (only while `owner` holds it). */
  delivered(seq: number, endpoint: string, owner: string, now: number): Promise<void>;
  /** Records a failed attempt and when to try again, releasing the lease. */
  failed(seq: number, endpoint: string, owner: string, now: number, nextAt: number, status: number | undefined, error: string): Promise<void>;
  /** Deliveries by status: pending and failing oldest first, delivered newest first. */
  list(status: DeliveryStatus, limit: number): Promise<DeliveryRecord[]>;
  /**
   * Retention: deletes at most `batch` deliveries delivered before `cutoff`, then at most
   * `batch` events recorded before it that have no delivery left. Returns how many rows went.
   */
  prune(cutoff: number, batch: number): Promise<number>;
  /** Deliveries not yet done, and how many of them have failed at least once. */
  backlog(): Promise<{ pending: number; failing: number }>;
}
