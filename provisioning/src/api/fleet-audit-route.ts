import type { RequestHandler } from 'express';
import { parseDurationMs, TlsfleetError } from '@tlsfleet/common';
import { fleetAudit } from '../audit/fleet-report.js';
import type { ApiContext } from './context.js';
import { onlyParams, queryParam } from './page-cursor.js';

/** What `expiringWithin` and `limit` default to, and their bounds. */
export const FLEET_AUDIT_DEFAULTS = { expiringWithin: '7d', limit: 100, maxLimit: 1000, maxWindowMs: 10 * 365 * 86_400_000 } as const;

/**
 * GET /v1/audit/fleet?expiringWithin=&limit= (admin) → FleetAuditReport: certificates
 * expired, expiring within the window and past their renewal point, and one-time tokens
 * outstanding or expired, each with a count and its first `limit` devices.
 */
export const fleetAuditRoute: RequestHandler = async (req, res) => {
  const ctx = res.locals.ctx as ApiContext;
  const query = req.query as Record<string, unknown>;
  onlyParams(query, ['expiringWithin', 'limit']);
  const expiringWithinMs = fleetAuditWindowMs(queryParam(query, 'expiringWithin') ?? FLEET_AUDIT_DEFAULTS.expiringWithin);
  const limit = fleetAuditLimit(queryParam(query, 'limit'));
  res.json(await fleetAudit(ctx.store, { now: Date.now(), expiringWithinMs, limit, activeIssuerKeyId: ctx.authority.issuerKeyId }));
};

/** A duration such as `24h` or `30d`, from 1 s to ten years, or an invalid_request error. */
export function fleetAuditWindowMs(text: string): number {
  const ms = parseDurationMs(text);
  if (ms === undefined || ms < 1000 || ms > FLEET_AUDIT_DEFAULTS.maxWindowMs) throw new TlsfleetError('invalid_request', 'expiringWithin must be a duration such as 24h or 30d, from 1s to 3650d.');
  return ms;
}

function fleetAuditLimit(value: string | undefined): number {
  if (value === undefined) return FLEET_AUDIT_DEFAULTS.limit;
  if (!/^[0-9]{1,4}$/.test(value) || Number(value) > FLEET_AUDIT_DEFAULTS.maxLimit) throw new TlsfleetError('invalid_request', `limit must be a whole number from 0 to ${FLEET_AUDIT_DEFAULTS.maxLimit}.`);
  return Number(value);
}
