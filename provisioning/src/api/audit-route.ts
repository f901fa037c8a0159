import type { RequestHandler } from 'express';
import { isValidName, TlsfleetError, type AuditEntry, type AuditPage } from '@tlsfleet/common';
import type { AuditRecord } from '../storage/store.js';
import type { ApiContext } from './context.js';
import { decodeCursor, onlyParams, page, pageLimit, queryParam } from './page-cursor.js';

/** GET /v1/audit?cursor=&device=&limit= (admin) → AuditPage, oldest first, keyset by record id. */
export const auditRoute: RequestHandler = async (req, res) => {
  const ctx = res.locals.ctx as ApiContext;
  const query = req.query as Record<string, unknown>;
  onlyParams(query, ['limit', 'cursor', 'device']);
  const limit = pageLimit(queryParam(query, 'limit'));
  const cursor = queryParam(query, 'cursor');
  const deviceId = queryParam(query, 'device');
  if (deviceId !== undefined && !isValidName(deviceId)) throw new TlsfleetError('invalid_request', 'device is not a valid device id.');
  const afterId = cursor === undefined ? undefined : Number(decodeCursor('audit', cursor));
  const rows = await ctx.store.listAuditPage({ afterId, limit: limit + 1, deviceId });
  const { items, nextCursor } = page('audit', rows, limit, (e) => String(e.id));
  const answer: AuditPage = { items: items.map(auditEntry), nextCursor };
  res.json(answer);
};

/** An audit record on the wire (ISO times, absent fields left out); also what `tlsfleet audit` prints. */
export function auditEntry(e: AuditRecord): AuditEntry {
  return {
    id: e.id,
    at: new Date(e.at).toISOString(),
    actor: e.actor,
    action: e.action,
    subject: e.subject,
    ...(e.serial !== undefined ? { serial: e.serial } : {}),
    ...(e.notAfter !== undefined ? { notAfter: new Date(e.notAfter).toISOString() } : {}),
    ...(e.reason !== undefined ? { reason: e.reason } : {}),
  };
}
