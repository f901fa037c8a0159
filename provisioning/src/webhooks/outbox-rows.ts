import { num, str, type Row } from '../storage/store-rows.js';
import type { DeliveryRecord, OutboxEvent, WebhookEventType } from './outbox.js';

/** A joined webhook_deliveries × webhook_events row, either dialect. */
export function eventFromRow(r: Row): OutboxEvent {
  return {
    seq: Number(r.seq ?? r.event_seq),
    id: String(r.id),
    type: r.type as WebhookEventType,
    device: String(r.device),
    serial: String(r.serial),
    notAfter: num(r.not_after),
    at: Number(r.at),
  };
}

export function deliveryFromRow(r: Row): DeliveryRecord {
  const delivered = num(r.delivered_at);
  return {
    event: eventFromRow(r),
    endpoint: String(r.endpoint),
    attempts: Number(r.attempts),
    nextAttemptAt: delivered === undefined ? num(r.next_at) : undefined,
    deliveredAt: delivered,
    lastAttemptAt: num(r.last_attempt_at),
    lastStatus: num(r.last_status),
    lastError: str(r.last_error),
  };
}

/** The columns a delivery listing or claim reads, with its event. */
export const DELIVERY_COLUMNS = `d.event_seq, d.endpoint, d.attempts, d.next_at, d.delivered_at, d.last_attempt_at, d.last_status, d.last_error,
  e.id, e.type, e.device, e.serial, e.not_after, e.at`;

/** Errors are kept short in the store: a receiver's long answer must not grow it. */
export function shortError(error: string): string {
  return error.length > 200 ? `${error.slice(0, 197)}...` : error;
}
