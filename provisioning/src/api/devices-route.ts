import type { RequestHandler } from 'express';
import { TlsfleetError, type CertificateStatus, type CertificateSummary, type DevicePage, type DeviceSummary } from '@tlsfleet/common';
import type { CertificateListing, DeviceRecord, DeviceStatus } from '../storage/store.js';
import type { ApiContext } from './context.js';
import { decodeCursor, onlyParams, page, pageLimit, queryParam } from './page-cursor.js';

const DEVICE_STATUSES: readonly DeviceStatus[] = ['active', 'revoked', 'expired'];
const ISO_TIME = /^\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:\d{2}))?$/;

/**
 * GET /v1/devices?limit=&cursor=&status=&expiringBefore= (admin) → DevicePage. Keyset pages
 * from the store: two bounded queries per page (the devices, then their certificates), so
 * the cost of a page never grows with the fleet and the event loop is never held for long.
 * Without parameters it answers the first page, with `devices` beside `items` for callers
 * from before paging.
 */
export const listDevicesRoute: RequestHandler = async (req, res) => {
  const ctx = res.locals.ctx as ApiContext;
  const query = req.query as Record<string, unknown>;
  onlyParams(query, ['limit', 'cursor', 'status', 'expiringBefore']);
  const limit = pageLimit(queryParam(query, 'limit'));
  const cursor = queryParam(query, 'cursor');
  const status = deviceStatus(queryParam(query, 'status'));
  const expiringBefore = isoTime(queryParam(query, 'expiringBefore'));
  const now = Date.now();
  const rows = await ctx.store.listDevicePage({ after: cursor === undefined ? undefined : decodeCursor('devices', cursor), limit: limit + 1, status, expiringBefore, now });
  const { items, nextCursor } = page('devices', rows, limit, (d) => d.id);
  const certificates = groupBySubject(await ctx.store.listCertificatesOf(items.map((d) => d.id)));
  const summaries = items.map((d) => summary(d, certificates.get(d.id) ?? [], now));
  const answer: DevicePage = { items: summaries, nextCursor, ...(Object.keys(query).length === 0 ? { devices: summaries } : {}) };
  res.json(answer);
};

/** GET /v1/devices/:id (admin) → DeviceSummary. */
export const getDeviceRoute: RequestHandler = async (req, res) => {
  const ctx = res.locals.ctx as ApiContext;
  const { device, certificates } = await ctx.authority.device(String(req.params.id));
  res.json(summary(device, certificates, Date.now()));
};

function deviceStatus(value: string | undefined): DeviceStatus | undefined {
  if (value === undefined || (DEVICE_STATUSES as readonly string[]).includes(value)) return value as DeviceStatus | undefined;
  throw new TlsfleetError('invalid_request', `status must be one of ${DEVICE_STATUSES.join(', ')}.`);
}

/** An ISO 8601 date or date-time (with Z or an offset) → ms. */
function isoTime(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const ms = ISO_TIME.test(value) ? Date.parse(value) : Number.NaN;
  if (Number.isNaN(ms)) throw new TlsfleetError('invalid_request', 'expiringBefore must be an ISO 8601 time such as 2026-01-31T00:00:00Z.');
  return ms;
}

function groupBySubject(certificates: readonly CertificateListing[]): Map<string, CertificateListing[]> {
  const bySubject = new Map<string, CertificateListing[]>();
  for (const c of certificates) {
    const list = bySubject.get(c.subject);
    if (list) list.push(c);
    else bySubject.set(c.subject, [c]);
  }
  return bySubject;
}

function summary(d: DeviceRecord, certs: readonly CertificateListing[], now: number): DeviceSummary {
  const certificates = certs.map((c): CertificateSummary => {
    const status: CertificateStatus = c.revokedAt !== undefined ? 'revoked' : c.notAfter <= now ? 'expired' : 'valid';
    return {
      serial: c.serial,
      notBefore: new Date(c.notBefore).toISOString(),
      notAfter: new Date(c.notAfter).toISOString(),
      status,
      issuedAt: new Date(c.issuedAt).toISOString(),
      ...(c.revokedAt !== undefined ? { revokedAt: new Date(c.revokedAt).toISOString() } : {}),
      ...(c.revocationReason !== undefined ? { revocationReason: c.revocationReason } : {}),
    };
  });
  const current = certificates.find((c) => c.serial === d.currentSerial);
  return {
    deviceId: d.id,
    kind: d.kind,
    createdAt: new Date(d.createdAt).toISOString(),
    certTtlSeconds: d.certTtlSeconds,
    certificates,
    ...(current ? { status: current.status === 'valid' ? 'active' : current.status, currentSerial: current.serial } : {}),
  };
}
