import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import type { RequestHandler, Response } from 'express';
import { TlsfleetError, type CertificateStatus, type CertificateSummary, type DeviceSummary } from '@tlsfleet/common';
import type { CertificateListing, DeviceRecord, DeviceStatus } from '../storage/store.js';
import type { ApiContext } from './context.js';
import { decodeCursor, onlyParams, page, pageLimit, queryParam } from './page-cursor.js';

const DEVICE_STATUSES: readonly DeviceStatus[] = ['active', 'revoked', 'expired'];
/** Devices whose certificates are read, summarised and written between two turns of the event loop. */
const CHUNK = 20;
const ISO_TIME = /^\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:\d{2}))?$/;

/**
 * GET /v1/devices?limit=&cursor=&status=&expiringBefore= (admin) → DevicePage. Keyset pages
 * from the store (the cost of a page never grows with the fleet), streamed CHUNK devices at a
 * time: their certificates are read, summarised and written, then the event loop takes a turn,
 * so a page of 1000 devices × 10 certificates never holds /readyz for long. Without
 * parameters it answers the first page, with `devices` beside `items` for callers from
 * before paging.
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
  const legacy = Object.keys(query).length === 0;
  const written: string[] = [];
  res.status(200).type('application/json');
  await write(res, '{"items":[');
  for (let i = 0; i < items.length; i += CHUNK) {
    if (res.destroyed) return; // the admin went away: read no further
    const chunk = items.slice(i, i + CHUNK);
    const certificates = groupBySubject(await ctx.store.listCertificatesOf(chunk.map((d) => d.id)));
    const text = chunk.map((d) => JSON.stringify(summary(d, certificates.get(d.id) ?? [], now))).join(',');
    if (legacy) written.push(text);
    await write(res, `${i === 0 ? '' : ','}${text}`);
    await yieldToEventLoop();
  }
  // DevicePage: `devices` repeats `items` only on the parameterless first page (≤ 100 devices).
  res.end(`],"nextCursor":${JSON.stringify(nextCursor)}${legacy ? `,"devices":[${written.join(',')}]` : ''}}`);
};

/** Writes, waiting for the socket to drain when its buffer is full (a slow admin client). */
async function write(res: Response, text: string): Promise<void> {
  if (text !== '' && !res.write(text) && !res.destroyed) await new Promise<void>((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

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
