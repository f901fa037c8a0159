import type { RequestHandler } from 'express';
import { TlsfleetError } from '@tlsfleet/common';
import type { ApiContext } from './context.js';
import { onlyParams, pageLimit, queryParam } from './page-cursor.js';
import type { DeliveryRecord, DeliveryStatus } from '../webhooks/outbox.js';
import { endpointLabel } from '../webhooks/deliverer.js';

const STATUSES: readonly DeliveryStatus[] = ['failing', 'pending', 'delivered'];

/**
 * GET /v1/webhooks/deliveries?status=failing|pending|delivered&limit= (admin) → `{items}`:
 * failing (undelivered, failed at least once; the default) and pending (not yet tried)
 * oldest event first, delivered newest first.
 */
export const webhookDeliveriesRoute: RequestHandler = async (req, res) => {
  const ctx = res.locals.ctx as ApiContext;
  const query = req.query as Record<string, unknown>;
  onlyParams(query, ['status', 'limit']);
  const status = (queryParam(query, 'status') ?? 'failing') as DeliveryStatus;
  if (!STATUSES.includes(status)) throw new TlsfleetError('invalid_request', `status is one of ${STATUSES.join(', ')}.`);
  const limit = pageLimit(queryParam(query, 'limit'));
  const items = await ctx.store.outbox().list(status, limit);
  res.json({ items: items.map(deliveryEntry) });
};

function deliveryEntry(d: DeliveryRecord): Record<string, unknown> {
  const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());
  return {
    eventId: d.event.id,
    type: d.event.type,
    device: d.event.device,
    serial: d.event.serial,
    at: iso(d.event.at),
    endpoint: endpointLabel(d.endpoint),
    attempts: d.attempts,
    ...(d.deliveredAt === undefined ? { nextAttemptAt: iso(d.nextAttemptAt) } : { deliveredAt: iso(d.deliveredAt) }),
    ...(d.lastAttemptAt === undefined ? {} : { lastAttemptAt: iso(d.lastAttemptAt) }),
    ...(d.lastStatus === undefined ? {} : { lastStatus: d.lastStatus }),
    ...(d.lastError === undefined ? {} : { lastError: d.lastError }),
  };
}
